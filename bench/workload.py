"""The data and request bodies of bench/run (issue 7), and the wrk scripts that send them.

    python bench/workload.py load --put N --get N --create N --bare N --hot-positions N
    python bench/workload.py lua OUT_DIR --threads T --key KEY [...]

Every benchmarked request needs data of its own: a correction PUT is a price reduction with a
refund, which can happen once per invoice, so each PUT goes to its own order. The loader builds
those orders through the domain (`Order`, `Order.create_invoice`, `Order.receive_payment`) and
stores them with the service's own repository (`OrderRepository.add/store`), many orders per
transaction instead of three HTTP requests each; the rows are the ones the service writes,
minus the outbox events of the seeding itself.

Data sets (order references are 1-16 letters or digits):
    P0000001..  3 positions, invoiced on INV-P0000001 (3 lines), paid in full: the PUT targets
    R0000001..  the same, for a PUT run under py-spy (BENCH_PROFILE=1)
    G0000001..  the same, read by GET invoice
    C0000001..  3 open positions: each gets one POST invoice
    W0000001..  like P, for the warm-up
    HOT00001    one order with many open positions, invoiced and corrected by 16 connections
    bench_rows  rows 1..N of the bare handler's table (and bench_events for its inserts)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from app import jsoncodec
from app.adapters import mapper, schema
from app.adapters.db import make_engine
from app.adapters.keys import create_key
from app.api import schemas
from app.domain import model
from app.factory import create_app
from app.service import commands

BUSINESS = "1000"
CUSTOMER = "BENCH0001"
ORDERS = f"/accounting/v1/businesses/{BUSINESS}/customers/{CUSTOMER}/orders"
HOT_ORDER = "HOT00001"
INVOICE_DATE = "2024-06-10"
PAID_ON = date(2024, 6, 11)
EXHAUSTED = "X9999999"  # a reference that does not exist: sent when a data set runs out (404)

ADDRESS: dict[str, Any] = {
    "salutation": "Mr",
    "firstName": "Max",
    "lastName": "Mustermann",
    "street": "Beispielstr.",
    "streetNumber": "13A",
    "postalCode": "48213",
    "postalPlace": "Muenster",
    "countryCode": "DE",
    "language": "de",
    "email": "max.mustermann@example.com",
}


def item(ref: int, price: str, rate: str, quantity: str) -> dict[str, Any]:
    """A position with its unit VAT computed from price and rate (rounded half up)."""
    gross, percent = Decimal(price), Decimal(rate)
    vat = (gross * percent / (100 + percent)).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    return {
        "orderItemReference": ref,
        "productId": f"SKU-{ref}",
        "description": "Blumentopf XL",
        "quantity": Decimal(quantity),
        "grossUnitPrice": gross,
        "vatPercent": percent,
        "vatAmount": vat,
        "vatType": "NORMAL" if percent >= 10 else "REDUCED",
        "positionType": "SALES_ARTICLE",
    }


# Three lines, two VAT rates: 11.90 + 2 x 23.80 at 19 %, 3 x 5.35 at 7 % = 75.55 gross.
THREE_ITEMS = [item(1, "11.90", "19", "1"), item(2, "23.80", "19", "2"), item(3, "5.35", "7", "3")]
# The correction: position 1 from 11.90 down to 9.90, so 2.00 of the payment is refunded.
CORRECTED_ITEMS = [item(1, "9.90", "19", "1"), *THREE_ITEMS[1:]]


def hot_items(count: int) -> list[dict[str, Any]]:
    return [item(ref, "11.90" if ref % 2 else "5.35", "19" if ref % 2 else "7", "1")
            for ref in range(1, count + 1)]  # fmt: skip


def order_body(reference: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "orderReference": reference,
        "customerNumber": CUSTOMER,
        "currency": "EUR",
        "orderType": "PHYSICAL_GOODS",
        "orderDate": "2024-06-01",
        "orderChannel": "ECOM",
        "supplyingCountry": "DE",
        "vatDeclarationCountry": "DE",
        "processAfterDunning": "HAND_OVER_FOR_DEBT_COLLECTION",
        "billToAddress": dict(ADDRESS),
        "items": items,
    }


def invoice_body(reference: str, refs: list[int]) -> dict[str, Any]:
    return {
        "invoiceReference": reference,
        "invoiceDate": INVOICE_DATE,
        "dueDate": "2024-07-10",
        "dispatchDate": "2024-06-09",
        "shipmentReference": "S01234567",
        "items": [{"orderItemReference": r} for r in refs],
    }


def invoice_reference(order_reference: str, position: int | None = None) -> str:
    return f"INV-{order_reference}" + ("" if position is None else f"-{position}")


def correction_body(order_reference: str) -> dict[str, Any]:
    """The PUT: the 3-line invoice restated, position 1 cheaper (a refund of 2.00)."""
    return {
        "invoice": invoice_body(invoice_reference(order_reference), [1, 2, 3]),
        "order": order_body(order_reference, CORRECTED_ITEMS),
    }


def correction_request(n: int) -> tuple[str, str]:
    """The path and body of the PUT correcting order P<n> (loaded as PAID)."""
    reference = f"P{n:07d}"
    path = f"{ORDERS}/{reference}/invoices/{invoice_reference(reference)}"
    return path, jsoncodec.dumps(correction_body(reference))


def in_process_client(url: str, key_name: str) -> Callable[[str, str], None]:
    """PUT(path, body) through Flask's test client, asserting a 200, to the app built as
    production builds it (JSON request log at INFO, Prometheus, the rate limiter), with a
    merchant key of its own. The request log goes where gunicorn's stderr would: not the
    terminal."""
    app = create_app({"DATABASE_URL": url, "RATE_LIMIT_PER_MINUTE": 100_000_000})
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    with app.extensions["accounting"].session_factory() as session, session.begin():
        key = create_key(session, [BUSINESS], "merchant", key_name)
    client = app.test_client()
    headers = {"X-Subscription-Key": key, "Content-Type": "application/json"}

    def put(path: str, body: str) -> None:
        response = client.put(path, data=body, headers=headers)
        assert response.status_code == 200, response.data[:300]

    return put


# --- loading ------------------------------------------------------------------------------


# The bodies are read by the API's own schemas, into the commands the service takes.
ORDER_SCHEMA, INVOICE_SCHEMA = schemas.OrderSchema(), schemas.CreateInvoiceSchema()


def _order(reference: str, items: list[dict[str, Any]]) -> model.Order:
    command: commands.CreateOrder = ORDER_SCHEMA.load(order_body(reference, items))
    return model.Order(
        BUSINESS,
        reference,
        CUSTOMER,
        "EUR",
        command.header,
        commands.item_specs(command.items, "EUR", "items"),
    )


def _invoice_spec(reference: str, refs: list[int]) -> model.InvoiceSpec:
    spec: model.InvoiceSpec = INVOICE_SCHEMA.load(invoice_body(reference, refs))
    return spec


def _store_orders(connection: Connection, orders: list[tuple[model.Order, list[Any]]]) -> None:
    """Insert the orders' rows table by table (parents first), in one executemany each: the
    rows the service's mapper writes (app/adapters/mapper.py)."""
    tables: dict[Any, list[dict[str, Any]]] = {}
    for order, effects in orders:
        created = [item for effect in effects for item in effect.created]
        for table, rows in mapper.new_order_rows(order, created).inserts.items():
            tables.setdefault(table, []).extend(rows)
    for table in schema.metadata.sorted_tables:
        if tables.get(table):
            connection.execute(table.insert(), tables[table])


# How far the orders of a data set have gone.
CREATED, PAID, CORRECTED = "created", "paid", "corrected"


def _orders(prefix: str, start: int, stop: int, state: str) -> list[tuple[model.Order, list[Any]]]:
    """Orders built by the domain: created; or invoiced (3 lines) and paid; or, further,
    corrected once as the benchmark's PUT corrects (a credit note, a new version, a refund)."""
    built = []
    for n in range(start, stop):
        order = _order(f"{prefix}{n:07d}", THREE_ITEMS)
        effects = []
        if state in (PAID, CORRECTED):
            spec = _invoice_spec(invoice_reference(order.order_reference), [1, 2, 3])
            effects.append(order.create_invoice(spec)[1])
            effects.append(order.receive_payment(None, "VISA", None, PAID_ON)[1])
        if state == CORRECTED:
            restated = ORDER_SCHEMA.load(correction_body(order.order_reference)["order"])
            _, corrected = order.correct_invoice(
                invoice_reference(order.order_reference),
                spec,
                restated.header,
                commands.item_specs(restated.items, "EUR", "order.items"),
                order.identity(),
                None,
            )
            effects.append(corrected)
        built.append((order, effects))
    return built


BARE_SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_rows (id integer PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE IF NOT EXISTS bench_events (
    id bigserial PRIMARY KEY,
    row_id integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def load(url: str, sets: dict[str, tuple[int, str]], bare: int, hot_positions: int) -> None:
    """Bulk-load the data sets; the ORM stays unmapped here, so building orders is cheap."""
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        for prefix, (count, state) in sets.items():
            for start in range(1, count + 1, 2000):
                _store_orders(
                    connection, _orders(prefix, start, min(start + 2000, count + 1), state)
                )
        _store_orders(connection, [(_order(HOT_ORDER, hot_items(hot_positions)), [])])
        for statement in BARE_SCHEMA.split(";"):
            if statement.strip():
                connection.exec_driver_sql(statement)
        connection.execute(
            text("INSERT INTO bench_rows (id, n) SELECT g, 0 FROM generate_series(1, :n) g"),
            {"n": bare},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        # The load's dirty pages written now, not by a checkpoint in the middle of a run.
        connection.exec_driver_sql("CHECKPOINT")
    orders = sum(count for count, _ in sets.values()) + 1
    print(f"loaded {orders} orders and {bare} bare rows in {time.perf_counter() - started:.1f} s")


# --- wrk scripts --------------------------------------------------------------------------

LUA_COMMON = r"""
-- Generated by bench/workload.py. Each thread walks its own share of the data set:
-- thread i (1-based) takes items i, i+T, i+2T, ...; past the end it sends EXHAUSTED (a 404).
local threads = {}
local next_id = 1
function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    n = START + id - STEP
    statuses = {}
    kinds = {}
end

-- wrk 4.1 calls request() once on the first thread's state to check the script before any
-- connection is open; that call must not use up an item.
local checked = false
function checking()
    if id == 1 and not checked then
        checked = true
        return true
    end
    return false
end

function number()
    n = n + STEP
    if n > START + COUNT then return nil end
    return string.format("%07d", n)
end

local function count(tbl, key)
    tbl[key] = (tbl[key] or 0) + 1
end

function response(status, headers, body)
    count(statuses, tostring(status))
    count(kinds, classify(status, body))
end

local function merged(name)
    local total = {}
    for _, thread in ipairs(threads) do
        for key, value in pairs(thread:get(name)) do
            total[key] = (total[key] or 0) + value
        end
    end
    return total
end

local function encode(tbl)
    local parts = {}
    for key, value in pairs(tbl) do
        table.insert(parts, string.format('"%s": %d', key, value))
    end
    return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"name": "%s", "requests": %d, "duration_us": %d, '
        .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
        .. '"socket_errors": %d, "statuses": %s, "kinds": %s}\n',
        NAME, summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        e.connect + e.read + e.write + e.timeout, encode(merged("statuses")),
        encode(merged("kinds"))))
end
"""


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def _script(name: str, count: int, threads: int, key: str, body: str, start: int = 0) -> str:
    """Items start + 1 to start + count of a data set, shared by the threads."""
    header = (
        f"NAME = {_lua_string(name)}\nSTART = {start}\nCOUNT = {count}\nSTEP = {threads}\n"
        f"KEY = {_lua_string(key)}\nEXHAUSTED = {_lua_string(EXHAUSTED)}\n"
    )
    return header + LUA_COMMON + body


def _templated(body: dict[str, Any], prefix: str, reference: str) -> str:
    """The body as JSON with the sample order's reference as a template: PREFIX@N@."""
    return jsoncodec.dumps(body).replace(reference, f"{prefix}@N@")


CLASSIFY_PLAIN = r"""
function classify(status, body)
    if status >= 200 and status < 300 then return "ok" end
    local code = string.match(body or "", '"code": *"([%w%-]+)"')
    return tostring(status) .. " " .. (code or "?")
end
"""


def _write_script(name: str, method: str, path: str, body: str, prefix: str, count: int,
                  threads: int, key: str, start: int = 0) -> str:  # fmt: skip
    """A write to each order of a data set once; past its end, to an order that does not exist."""
    return _script(
        name,
        count,
        threads,
        key,
        CLASSIFY_PLAIN
        + f"""
local BODY = {_lua_string(body)}
local PATH = {_lua_string(path)}
local HEADERS = {{["X-Subscription-Key"] = KEY, ["Content-Type"] = "application/json"}}
function request()
    if checking() then return wrk.format("GET", "/") end
    local num = number()
    if num == nil then
        return wrk.format("{method}", (PATH:gsub("{prefix}@N@", EXHAUSTED)), HEADERS, BODY)
    end
    return wrk.format("{method}", (PATH:gsub("@N@", num)), HEADERS, (BODY:gsub("@N@", num)))
end
""",
        start,
    )


def put_script(prefix: str, count: int, threads: int, key: str, start: int = 0) -> str:
    sample = f"{prefix}0000001"
    body = _templated(correction_body(sample), prefix, sample)
    path = f"{ORDERS}/{prefix}@N@/invoices/INV-{prefix}@N@"
    name = f"PUT correction ({prefix} from {start + 1})"
    return _write_script(name, "PUT", path, body, prefix, count, threads, key, start)


def get_script(prefix: str, count: int, threads: int, key: str) -> str:
    path = f"{ORDERS}/{prefix}@N@/invoices/INV-{prefix}@N@"
    return _script(
        f"GET invoice ({prefix})",
        count,
        threads,
        key,
        CLASSIFY_PLAIN
        + f"""
local PATH = {_lua_string(path)}
local HEADERS = {{["X-Subscription-Key"] = KEY}}
function request()
    if checking() then return wrk.format("GET", "/") end
    local num = number()
    if num == nil then  -- reads may repeat: start the walk again
        n = id - STEP
        num = number()
    end
    return wrk.format("GET", (PATH:gsub("@N@", num)), HEADERS)
end
""",
    )


def create_script(prefix: str, count: int, threads: int, key: str) -> str:
    sample = f"{prefix}0000001"
    body = _templated(invoice_body(invoice_reference(sample), [1, 2, 3]), prefix, sample)
    path = f"{ORDERS}/{prefix}@N@/invoices"
    return _write_script(
        f"POST invoice ({prefix})", "POST", path, body, prefix, count, threads, key
    )


def bare_script(count: int, threads: int, offset: int) -> str:
    return _script(
        f"bare handler (rows from {offset + 1})",
        count,
        threads,
        "",
        CLASSIFY_PLAIN
        + f"""
local OFFSET = {offset}
function request()
    if checking() then return wrk.format("GET", "/") end
    n = n + STEP
    if n > COUNT then return wrk.format("POST", "/bare/0") end
    return wrk.format("POST", "/bare/" .. tostring(OFFSET + n))
end
""",
    )


def hot_script(positions: int, threads: int, key: str) -> str:
    """16 connections on one order: each thread invoices its positions, then corrects them.

    Thread i owns positions i, i+T, ...: it first invoices each of them on an invoice of its
    own (INV-HOT00001-p), then corrects those invoices round after round, each correction a new
    billing address (the commonest reason for a correction) and shipment reference. Prices do
    not change: every correction restates the whole order, and a price cut by one connection
    would make every other connection's body stale (422 position-change-forbidden), so only
    changes that leave the positions alone can be sent concurrently without a read first.
    SPEC section 6 rule 2 refuses a correction while any position is open, so corrections a
    thread sends while another thread is still invoicing get 409 order-not-settled: expected,
    and counted apart. A thread starts correcting only once each of its own creations is
    answered (it reads the order meanwhile): a correction on one connection could otherwise
    overtake its invoice's creation on another and get a 404.
    """
    template_order = order_body(HOT_ORDER, hot_items(positions))
    template_order["billToAddress"]["street"] = "Hauptstr. @K@"
    invoice = invoice_body(invoice_reference(HOT_ORDER, 999999), [999999])
    invoice["shipmentReference"] = "S@K@"
    correction = jsoncodec.dumps({"invoice": invoice, "order": template_order})
    correction = correction.replace("999999", "@P@")
    create = jsoncodec.dumps(invoice_body(invoice_reference(HOT_ORDER, 999999), [999999]))
    create = create.replace("999999", "@P@")
    path = f"{ORDERS}/{HOT_ORDER}/invoices"
    return (
        f"NAME = {_lua_string('hot order (invoice + correct one order)')}\n"
        f"POSITIONS = {positions}\nSTART = 0\nSTEP = {threads}\nKEY = {_lua_string(key)}\n"
        + LUA_COMMON.replace("function number()", "function _unused_number()")
        + f"""
local CORRECTION = {_lua_string(correction)}
local CREATE = {_lua_string(create)}
local PATH = {_lua_string(path)}
local HEADERS = {{["X-Subscription-Key"] = KEY, ["Content-Type"] = "application/json"}}
local ORDER_PATH = {_lua_string(f"{ORDERS}/{HOT_ORDER}")}
local k = -1
local answered = 0  -- of this thread's invoice creations
function request()
    if checking() then return wrk.format("GET", "/") end
    local own = math.floor((POSITIONS - id) / STEP) + 1  -- positions this thread owns
    if k + 1 >= own and answered < own then
        -- A correction sent now could overtake its invoice's creation on another connection
        -- (a 404): read the order until every creation is answered.
        return wrk.format("GET", ORDER_PATH, HEADERS)
    end
    k = k + 1
    if k < own then
        local p = tostring(id + k * STEP)
        return wrk.format("POST", PATH, HEADERS, (CREATE:gsub("@P@", p)))
    end
    local p = tostring(id + ((k - own) % own) * STEP)
    local tag = tostring(id) .. "x" .. tostring(k)
    local body = CORRECTION:gsub("@P@", p):gsub("@K@", tag)
    return wrk.format("PUT", PATH .. "/INV-{HOT_ORDER}-" .. p, HEADERS, body)
end

function classify(status, body)
    body = body or ""
    local kind = "ok-unchanged"
    if status >= 200 and status < 300 then
        if string.find(body, '"creditNoteReference": *"') then return "corrected" end
        if string.find(body, '"versions"', 1, true) then kind = "invoiced" end
    else
        local code = string.match(body, '"code": *"([%w%-]+)"')
        kind = tostring(status) .. " " .. (code or "?")
    end
    if kind ~= "ok-unchanged" and answered < math.floor((POSITIONS - id) / STEP) + 1 then
        answered = answered + 1
    end
    return kind
end
"""
    )


def write_scripts(out: Path, threads: int, key: str, counts: dict[str, int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # The PUT and the bare handler take turns, round after round, each round on data of its
    # own: a machine whose speed drifts within minutes slows both alike.
    rounds = {}
    for r in range(counts["rounds"]):
        rounds[f"put_{r + 1}.lua"] = put_script("P", counts["P"], threads, key, r * counts["P"])
        offset = counts["bare_warmup"] + r * counts["bare"]
        rounds[f"bare_{r + 1}.lua"] = bare_script(counts["bare"], threads, offset)
    scripts = {
        **rounds,
        "warmup_put.lua": put_script("W", counts["W"], threads, key),
        "profile_put.lua": put_script("R", counts["R"], threads, key),
        "get.lua": get_script("G", counts["G"], threads, key),
        "create.lua": create_script("C", counts["C"], threads, key),
        "hot.lua": hot_script(counts["hot"], threads, key),
        "warmup_bare.lua": bare_script(counts["bare_warmup"], threads, 0),
    }
    for name, script in scripts.items():
        (out / name).write_text(script)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    loading = sub.add_parser("load")
    lua = sub.add_parser("lua")
    lua.add_argument("out", type=Path)
    lua.add_argument("--threads", type=int, required=True)
    lua.add_argument("--key", required=True)
    for p in (loading, lua):
        p.add_argument("--url", default=None)
        p.add_argument("--put", type=int, required=True)
        p.add_argument("--get", type=int, required=True)
        p.add_argument("--create", type=int, required=True)
        p.add_argument("--warmup", type=int, required=True)
        p.add_argument("--bare", type=int, required=True)
        p.add_argument("--bare-warmup", type=int, required=True)
        p.add_argument("--hot-positions", type=int, required=True)
        p.add_argument("--profile", type=int, default=0, help="orders for a profiled PUT run")
        p.add_argument("--rounds", type=int, default=1, help="PUT and bare runs, taking turns")
        p.add_argument(
            "--history", type=int, default=0, help="orders corrected before the run (history)"
        )
    args = parser.parse_args(argv)
    bare_warmup = args.bare_warmup
    if args.command == "load":
        load(
            args.url,
            {
                "W": (args.warmup, PAID),
                "P": (args.put * args.rounds, PAID),
                "R": (args.profile, PAID),
                "G": (args.get, PAID),
                "C": (args.create, CREATED),
                "H": (args.history, CORRECTED),
            },
            args.bare * args.rounds + bare_warmup,
            args.hot_positions,
        )
    else:
        counts = {
            "W": args.warmup,
            "P": args.put,
            "R": args.profile,
            "G": args.get,
            "C": args.create,
            "hot": args.hot_positions,
            "bare_warmup": bare_warmup,
            "bare": args.bare,
            "rounds": args.rounds,
        }
        write_scripts(args.out, args.threads, args.key, counts)
        print(json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1:])
