"""A random, bounded workload of every write kind against a few hot orders.

Each client thread reads an order, picks a write from what it read (mostly valid, sometimes
deliberately not: stale, exceeding, unknown), sends it and keeps the final answer. In
`idempotent` mode every write carries an Idempotency-Key and a client retries connection
errors, 5xx and 409 `request-in-flight` with the same key, as a client honouring Retry-After
would. The answers are then held against the database: nothing lost, nothing doubled.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy import Engine, func, select

from app.adapters import schema
from tests.concurrency import bodies
from tests.concurrency.conftest import BUSINESS, Client, Reply, Server

Body = dict[str, Any]

KINDS = ("invoice", "cancellation", "return", "goodwill", "payment", "correction")
WEIGHTS = (3, 1, 1, 1, 2, 5)
PATHS = {
    "invoice": "invoices",
    "cancellation": "cancellations",
    "return": "returns",
    "goodwill": "goodwills",
    "payment": "payments",
}
WRITE_STATUSES = {200, 409, 412, 422}
REFUSALS = {
    "position-not-open",
    "unknown-position",
    "invoice-exists",
    "reference-taken",
    "position-not-invoiced",
    "return-exceeds-invoiced",
    "goodwill-exceeds-remaining",
    "payment-exceeds-balance",
    "nothing-to-pay",
    "order-not-settled",
    "position-returned",
    "position-goodwilled",
    "gross-price-increase",
    "position-change-forbidden",
    "precondition-failed",
}
ATTEMPTS = 40  # per request in idempotent mode; with the pauses below at most ~12 s
PAUSE = 0.3


def hot_orders(count: int) -> list[Body]:
    """Orders of ten positions, quantities 1 to 3, at 19 % and 7 %, prices with awkward cents.

    Returns and goodwills mostly hit positions 1-5, so that invoices of positions 6-10 mostly
    stay correctable.
    """
    prices = ("11.90", "23.80", "7.99", "49.95", "3.33", "100.00", "0.99", "15.00", "8.88", "42.42")
    return [
        bodies.new_order(
            [(n, prices[n - 1], "19" if n % 3 else "7", str(1 + n % 3)) for n in range(1, 11)]
        )
        for _ in range(count)
    ]


def refusal_codes(reply: Reply) -> set[str]:
    """The problem's code, or the codes of its fields when several rules were broken at once."""
    body = reply.json or {}
    if body.get("code") == "validation-failed":
        return {e["code"] for e in body.get("errors", [])} or {"validation-failed"}
    return {body.get("code", "")}


@dataclass
class Write:
    """One logical write and its final answer (after any retries)."""

    kind: str
    order_ref: str
    reference: str | None
    body: Body
    dry_run: bool
    reply: Reply
    attempts: int
    invoice_reference: str | None = None

    @property
    def written(self) -> bool:
        return self.reply.status == 200 and not self.dry_run


@dataclass
class Plan:
    kind: str
    suffix: str
    body: Body
    reference: str | None = None
    dry_run: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    invoice_reference: str | None = None


@dataclass
class Workload:
    server: Server
    key: str
    orders: list[Body]
    seed: int
    max_requests: int = 600
    seconds: float = 40.0
    idempotent: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    used: int = 0
    writes: list[Write] = field(default_factory=list)
    reads: list[Reply] = field(default_factory=list)
    transient: list[tuple[str, Any]] = field(default_factory=list)  # retried failures

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    @property
    def order_refs(self) -> list[str]:
        return [o["orderReference"] for o in self.orders]

    def take(self, requests_: int) -> bool:
        """Reserve requests from the shared budget; False once it or the time is spent."""
        with self.lock:
            if self.used >= self.max_requests or time.monotonic() > self.deadline:
                return False
            self.used += requests_
            return True

    def run(self, threads: int, during: Callable[[], None] | None = None) -> None:
        """Run the client threads (and `during`, e.g. a worker killer) until the budget ends."""
        with ThreadPoolExecutor(max_workers=threads + 1) as pool:
            futures = [pool.submit(self.client, t) for t in range(threads)]
            if during is not None:
                futures.append(pool.submit(during))
            for f in futures:
                f.result(timeout=self.seconds + 60)

    # --- sending ---

    def send(
        self, c: Client, method: str, path: str, body: Body | None, headers: dict[str, str]
    ) -> tuple[Reply, int]:
        if not self.idempotent:
            return c.request(method, path, body, headers), 1
        for attempt in range(1, ATTEMPTS + 1):
            try:
                reply = c.request(method, path, body, headers)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
                # The worker died before or while answering: send again with the same key.
                self.transient.append(("connection", type(error).__name__))
                c.http.close()
                time.sleep(PAUSE)
                continue
            if reply.status >= 500 or reply.code == "request-in-flight":
                self.transient.append((str(reply.status), reply.headers.get("Retry-After")))
                if reply.status >= 500:
                    assert reply.status == 503 and reply.headers.get("Retry-After"), reply.raw
                time.sleep(PAUSE)
                continue
            return reply, attempt
        raise AssertionError(f"{method} {path}: no answer after {ATTEMPTS} attempts")

    def client(self, t: int) -> None:
        rng = random.Random(self.seed * 1000 + t)
        c = Client(self.server, self.key)
        n = 0
        try:
            while self.take(2):
                n += 1
                order_ref = rng.choice(self.order_refs)
                read, _ = self.send(c, "GET", c.order_path(order_ref), None, {})
                with self.lock:
                    self.reads.append(read)
                if read.status != 200:
                    continue
                plan = self.plan(rng, t, n, order_ref, read)
                headers = dict(plan.headers)
                if self.idempotent:
                    headers["Idempotency-Key"] = f"{plan.kind}-{t}-{n}"
                reply, attempts = self.send(
                    c,
                    "POST" if plan.kind != "correction" else "PUT",
                    c.order_path(order_ref) + plan.suffix,
                    plan.body,
                    headers,
                )
                write = Write(
                    plan.kind,
                    order_ref,
                    plan.reference,
                    plan.body,
                    plan.dry_run,
                    reply,
                    attempts,
                    plan.invoice_reference,
                )
                with self.lock:
                    self.writes.append(write)
        finally:
            c.close()

    # --- choosing a write from what was read ---

    def order_body(self, order_ref: str) -> Body:
        return next(o for o in self.orders if o["orderReference"] == order_ref)

    def plan(self, rng: random.Random, t: int, n: int, order_ref: str, read: Reply) -> Plan:
        state: Body = read.json
        kind = rng.choices(KINDS, WEIGHTS)[0]
        invoiced = [p for p in state["positions"] if p["state"] == "invoiced"]
        if kind == "correction" and not invoiced:
            kind = "payment"
        make = getattr(self, f"_{kind}")
        plan: Plan = make(rng, f"{t}-{n}", state, read.headers.get("ETag", '"0"'), order_ref)
        return plan

    @staticmethod
    def _pick(
        rng: random.Random, preferred: list[int], everything: list[int], most: int = 2
    ) -> list[int]:
        """Mostly positions that fit (when any do), now and then any position at all."""
        if preferred and rng.random() < 0.85:
            return rng.sample(preferred, k=rng.randint(1, min(most, len(preferred))))
        return [rng.choice(everything)]

    @staticmethod
    def _creditable(state: Body) -> list[int]:
        """Invoiced positions among 1-5, the ones returns and goodwills mostly go to."""
        return [
            p["orderItemReference"]
            for p in state["positions"]
            if p["state"] == "invoiced" and p["orderItemReference"] <= 5
        ]

    def _invoice(
        self, rng: random.Random, tag: str, state: Body, etag: str, order_ref: str
    ) -> Plan:
        everything = [p["orderItemReference"] for p in state["positions"]]
        open_ = [p["orderItemReference"] for p in state["positions"] if p["state"] == "open"]
        refs = self._pick(rng, open_, everything)
        if rng.random() < 0.04:
            refs = [*refs, 99]  # unknown position: 422
        taken = sorted({p["invoiceReference"] for p in state["positions"] if p["invoiceReference"]})
        reference = f"INV-{tag}"
        if taken and rng.random() < 0.05:
            reference = rng.choice(taken)  # an existing invoice: 409
        return Plan("invoice", "/invoices", bodies.invoice(reference, refs), reference)

    def _cancellation(
        self, rng: random.Random, tag: str, state: Body, etag: str, order_ref: str
    ) -> Plan:
        everything = [p["orderItemReference"] for p in state["positions"]]
        open_ = [p["orderItemReference"] for p in state["positions"] if p["state"] == "open"]
        refs = self._pick(rng, open_, everything, most=1)
        return Plan("cancellation", "/cancellations", bodies.cancellation(refs))

    def _return(self, rng: random.Random, tag: str, state: Body, etag: str, order_ref: str) -> Plan:
        everything = [p["orderItemReference"] for p in state["positions"]]
        (ref,) = self._pick(rng, self._creditable(state), everything, most=1)
        reference = f"RET-{tag}"
        body = {
            "returnReference": reference,
            "returnReason": "CUSTOMER_RETURN",
            "items": [{"orderItemReference": ref, "quantity": Decimal(rng.randint(1, 3))}],
        }
        return Plan("return", "/returns", body, reference)

    def _goodwill(
        self, rng: random.Random, tag: str, state: Body, etag: str, order_ref: str
    ) -> Plan:
        everything = [p["orderItemReference"] for p in state["positions"]]
        (ref,) = self._pick(rng, self._creditable(state), everything, most=1)
        p = next(p for p in state["positions"] if p["orderItemReference"] == ref)
        price, quantity = Decimal(str(p["grossUnitPrice"])), Decimal(str(p["quantity"]))
        left = price * (quantity - Decimal(str(p["returnedQuantity"]))) - Decimal(
            str(p["goodwillAmount"])
        )
        cents = rng.randint(1, max(1, int(left * 100) + 200))  # now and then more than is left
        reference = f"GW-{tag}"
        body = {
            "goodwillReference": reference,
            "goodwillReason": "CUSTOMER_COMPLAINT",
            "items": [
                {
                    "orderItemReference": ref,
                    "quantity": 1,
                    "grossUnitPrice": Decimal(cents) / 100,
                }
            ],
        }
        return Plan("goodwill", "/goodwills", body, reference)

    def _payment(
        self, rng: random.Random, tag: str, state: Body, etag: str, order_ref: str
    ) -> Plan:
        body: Body = {"paymentProvider": "VISA"}
        balance = Decimal(str(state["totals"]["balance"]))
        roll = rng.random()
        if roll < 0.6:
            cents = rng.randint(1, max(1, int(balance * 50)))  # up to half of what is open
            body["authorizedAmount"] = Decimal(cents) / 100
        elif roll < 0.75:
            body["authorizedAmount"] = balance + Decimal("0.01")  # more than is open: 409
        return Plan("payment", "/payments", body)

    def _correction(
        self, rng: random.Random, tag: str, state: Body, etag: str, order_ref: str
    ) -> Plan:
        positions = state["positions"]
        invoice_ref = rng.choice(
            sorted({p["invoiceReference"] for p in positions if p["state"] == "invoiced"})
        )
        on_invoice = [p for p in positions if p["invoiceReference"] == invoice_ref]
        target = rng.choice(on_invoice)
        price = Decimal(str(target["grossUnitPrice"]))
        roll = rng.random()
        prices: dict[int, Decimal] = {}
        if roll < 0.7 and price > Decimal("1.00"):
            prices[target["orderItemReference"]] = price - Decimal(rng.randint(1, 100)) / 100
        elif roll < 0.8:
            prices[target["orderItemReference"]] = price + Decimal("0.50")  # an increase: 422
        invoice = bodies.invoice(invoice_ref, [p["orderItemReference"] for p in on_invoice])
        header = {k: v for k, v in self.order_body(order_ref).items() if k != "items"}
        body = {
            "invoice": invoice,
            "order": {**header, "items": bodies.restated_items(positions, prices)},
        }
        dry_run = rng.random() < 0.3
        headers = {"If-Match": etag} if rng.random() < 0.3 else {}
        suffix = f"/invoices/{invoice_ref}" + ("?dryRun=true" if dry_run else "")
        return Plan("correction", suffix, body, None, dry_run, headers, invoice_ref)

    # --- what the answers say against what the database holds ---

    def statuses(self) -> dict[str, Counter[int]]:
        result: dict[str, Counter[int]] = {k: Counter() for k in KINDS}
        for w in self.writes:
            result[w.kind][w.reply.status] += 1
        return result

    def check_answers(self) -> None:
        """Every read 200; every write an expected status, each refusal with a known code."""
        assert [r.raw[:300] for r in self.reads if r.status != 200] == []
        unexpected = [
            (w.kind, w.reply.status, w.reply.raw[:300])
            for w in self.writes
            if w.reply.status not in WRITE_STATUSES
            or (w.reply.status != 200 and not refusal_codes(w.reply) <= REFUSALS)
        ]
        assert unexpected == [], unexpected

    def check_nothing_lost_or_doubled(self, engine: Engine, client: Client) -> None:
        """Each document a 200 announced is in the database exactly once, and nothing else."""
        written = [w for w in self.writes if w.written]

        def announced(kind: str) -> set[tuple[str, str]]:
            return {
                (w.order_ref, w.reference or w.reply.json["reference"])
                for w in written
                if w.kind == kind
            }

        with engine.connect() as db:

            def rows(table: Any, *columns: Any) -> list[tuple[Any, ...]]:
                query = select(*columns).where(table.c.business_code == BUSINESS)
                return [tuple(r) for r in db.execute(query)]

            invoices = rows(
                schema.invoices,
                schema.invoices.c.order_reference,
                schema.invoices.c.invoice_reference,
            )
            cancellations = rows(
                schema.cancellations,
                schema.cancellations.c.order_reference,
                schema.cancellations.c.reference,
            )
            credits = rows(
                schema.credits,
                schema.credits.c.kind,
                schema.credits.c.order_reference,
                schema.credits.c.reference,
            )
            payments = rows(
                schema.payments,
                schema.payments.c.order_reference,
                schema.payments.c.payment_id,
                schema.payments.c.amount,
            )
            refunds = rows(schema.refunds, schema.refunds.c.refund_id)
            versions: dict[str, int] = dict(
                db.execute(
                    select(schema.invoice_versions.c.invoice_reference, func.count())
                    .where(schema.invoice_versions.c.business_code == BUSINESS)
                    .group_by(schema.invoice_versions.c.invoice_reference)
                ).all()
            )

        assert sorted(invoices) == sorted(announced("invoice"))
        assert len(invoices) == len(set(invoices))
        assert sorted(cancellations) == sorted(announced("cancellation"))
        for kind in ("return", "goodwill"):
            assert sorted((o, r) for k, o, r in credits if k == kind) == sorted(announced(kind))

        paid = [w for w in written if w.kind == "payment"]
        assert len(payments) == len(paid), "a payment was lost or booked twice"
        assert sorted((o, pid) for o, pid, _ in payments) == sorted(
            (w.order_ref, w.reply.json["reference"]) for w in paid
        )
        amounts = {pid: amount for _, pid, amount in payments}
        for w in paid:
            if "authorizedAmount" in w.body:
                expected = int(w.body["authorizedAmount"] * 100)
                assert amounts[w.reply.json["reference"]] == expected

        refund_ids = {
            w.reply.json["refund"]["id"] for w in written if w.reply.json.get("refund") is not None
        }
        assert sorted(r for (r,) in refunds) == sorted(refund_ids)

        changed: Counter[str] = Counter(
            w.invoice_reference or ""
            for w in written
            if w.kind == "correction" and w.reply.json["changed"]
        )
        assert versions == {ref: 1 + changed[ref] for _, ref in invoices}

        for ref in self.order_refs:
            totals = client.order(ref)["totals"]
            booked = sum(amount for o, _, amount in payments if o == ref)
            assert totals["paid"] == Decimal(booked) / 100


def summary(workload: Workload) -> str:
    statuses = {k: dict(v) for k, v in workload.statuses().items()}
    codes = Counter((w.kind, w.reply.code) for w in workload.writes if w.reply.status != 200)
    replies = [*workload.reads, *(w.reply for w in workload.writes)] or [Reply(0, {}, b"", 0.0)]
    return (
        f"{workload.used} requests budgeted, {len(workload.writes)} writes, "
        f"{len(workload.reads)} reads; statuses {statuses}; "
        f"refusals {dict(codes)}; retried {Counter(workload.transient)}; "
        f"answered by a replay {sum(w.reply.replayed for w in workload.writes)}; "
        f"slowest answer {max(r.elapsed for r in replies):.2f} s"
    )
