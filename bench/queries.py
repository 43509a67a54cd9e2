"""SQL statements, round trips and server commands per request, from libpq's trace (issue 7).

    DATABASE_URL=postgresql+psycopg://... python bench/queries.py [--show]

Runs the app in-process (Flask test client) against an empty, migrated PostgreSQL database:
loads a few orders with bench/workload.py, then sends one request of each benchmarked kind and
prints, from libpq's protocol trace of every connection, how many commands the server ran
(BEGIN, COMMIT and PREPARE included), how many of them were SQL statements (the rest left out),
and how many round trips they took (--show: the messages sent). Every table it wrote is
emptied at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
import workload
from sqlalchemy import event, text

from app import jsoncodec
from app.adapters import schema
from app.adapters.keys import create_key
from app.factory import create_app


def main(show: bool) -> None:
    url = os.environ["DATABASE_URL"]
    workload.load(
        url, {"P": (3, workload.PAID), "C": (3, workload.CREATED)}, bare=1, hot_positions=8
    )
    app = create_app({"DATABASE_URL": url, "RATE_LIMIT_PER_MINUTE": 0, "LOG_LEVEL": "WARNING"})
    accounting = app.extensions["accounting"]
    # libpq's protocol trace of every connection: a round trip ends with the server's
    # ReadyForQuery, a statement with its CommandComplete (or EmptyQueryResponse: the ping).
    trace = tempfile.NamedTemporaryFile(prefix="queries-trace-")  # noqa: SIM115
    flags = psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE

    traced: list[Any] = []

    def start_trace(dbapi_connection: Any) -> None:
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(flags)

    @event.listens_for(accounting.engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        traced.append(dbapi_connection)
        start_trace(dbapi_connection)

    def wire() -> tuple[int, int, int, list[str]]:
        # libpq buffers its trace; stopping it flushes what it holds (then it starts again).
        for dbapi_connection in traced:
            if not dbapi_connection.closed:
                dbapi_connection.pgconn.untrace()
                start_trace(dbapi_connection)
        lines = [line.split("\t") for line in Path(trace.name).read_text().splitlines()]
        backend = [line[2:] for line in lines if line[0] == "B"]
        done = [b for b in backend if b[0] in ("CommandComplete", "EmptyQueryResponse")]
        tags = [b[1].strip(' "').split(" ")[0] for b in done if len(b) > 1]
        sql = sum(tag not in ("BEGIN", "COMMIT", "ROLLBACK", "PREPARE") for tag in tags)
        sent = [" ".join(f[3].split()) for f in lines if f[0] == "F" and f[2] in ("Query", "Parse")]
        return [b[0] for b in backend].count("ReadyForQuery"), len(done), sql, sent

    with accounting.session_factory() as session, session.begin():
        key = create_key(session, [workload.BUSINESS], "merchant", "queries")
    client = app.test_client()

    json_headers = {"X-Subscription-Key": key, "Content-Type": "application/json"}
    base = workload.ORDERS

    def measure(label: str, method: str, path: str, body: Any = None) -> None:
        trips_before, done_before, sql_before, sent_before = wire()
        data = None if body is None else jsoncodec.dumps(body)
        response = client.open(path, method=method, data=data, headers=json_headers)
        assert response.status_code == 200, (label, response.status_code, response.data[:500])
        trips, done, sql, sent = wire()
        print(
            f"{sql - sql_before:>3} statements {trips - trips_before:>3} round trips "
            f"{done - done_before:>3} server commands  {label}"
        )
        if show:
            for message in sent[len(sent_before) :]:
                print(f"      {message[:150]}")

    # Warm: the first request of a process compiles statements and fills caches, and the first
    # of each kind on a connection prepares its statements there (one more round trip each).
    measure("(warm-up) GET invoice", "GET", f"{base}/P0000003/invoices/INV-P0000003")
    measure(
        "(warm-up) PUT correction",
        "PUT",
        f"{base}/P0000002/invoices/INV-P0000002",
        workload.correction_body("P0000002"),
    )
    measure(
        "(warm-up) POST invoice",
        "POST",
        f"{base}/C0000002/invoices",
        workload.invoice_body("INV-C0000002", [1, 2, 3]),
    )
    measure(
        "PUT correction (3-line paid invoice, refund)",
        "PUT",
        f"{base}/P0000001/invoices/INV-P0000001",
        workload.correction_body("P0000001"),
    )
    measure("GET invoice", "GET", f"{base}/P0000001/invoices/INV-P0000001")
    measure(
        "POST invoice (3 lines)",
        "POST",
        f"{base}/C0000001/invoices",
        workload.invoice_body("INV-C0000001", [1, 2, 3]),
    )
    hot = workload.HOT_ORDER
    for p in range(1, 9):
        invoice = workload.invoice_body(workload.invoice_reference(hot, p), [p])
        measure(
            f"POST invoice (hot order, position {p} of 8)",
            "POST",
            f"{base}/{hot}/invoices",
            invoice,
        )
    for round_ in range(1, 4):
        order = workload.order_body(hot, workload.hot_items(8))
        order["billToAddress"]["street"] = f"Hauptstr. {round_}"
        invoice = workload.invoice_body(workload.invoice_reference(hot, 1), [1])
        measure(
            f"PUT correction (hot order, 8 invoices, round {round_})",
            "PUT",
            f"{base}/{hot}/invoices/{invoice['invoiceReference']}",
            {"invoice": invoice, "order": order},
        )

    with accounting.engine.begin() as connection:
        tables = ", ".join(t.name for t in schema.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables}, bench_rows, bench_events"))


if __name__ == "__main__":
    main("--show" in sys.argv[1:])
