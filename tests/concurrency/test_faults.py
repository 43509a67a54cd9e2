"""Faults answered honestly: PostgreSQL going away under load, and orders held locked.

A client sees 503 problem+json with Retry-After for anything the database did, never a 500;
a retry with the same Idempotency-Key is always safe; a busy order costs its writer at most
the lock budget, and never anybody else's request.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.adapters import schema
from app.adapters.db import LOCK_TIMEOUT_MS, make_engine
from app.adapters.keys import create_key
from app.cli import upgrade
from tests.concurrency import bodies
from tests.concurrency.conftest import (
    BUSINESS,
    Client,
    Reply,
    Server,
    running_server,
    verify_clean,
)
from tests.live_server import free_port

ORDERS = 8
WRITERS = 6
LOAD_SECONDS = 9.0
OUTAGE_AT, OUTAGE_SECONDS = 2.5, 3.0
RETURN_WITHIN = 2.0  # writes succeed again within this long of PostgreSQL's return
PAYMENT = Decimal("0.01")


# --- a PostgreSQL of the test's own, to stop and start ------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root: root runs the server as the postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Cluster:
    """A throwaway PostgreSQL on 127.0.0.1 that the test may stop and start."""

    folder: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(["pg_ctl", "-D", str(self.folder / "data"), "-w", "-t", "60", *args]),
            cwd=self.folder,
            check=True,
            capture_output=True,
            timeout=90,
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._ctl("-l", str(self.folder / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="pg-faults-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    subprocess.run(
        _as_postgres(["initdb", "-D", str(folder / "data"), "--auth=trust", "-U", "postgres"]),
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=120,
    )
    running = Cluster(folder)
    running.start()
    try:
        yield running
    finally:
        try:
            running.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# --- PostgreSQL stopped under a keyed write load -------------------------------------------


@dataclass
class Outcome:
    """What one logical write (one Idempotency-Key) saw until it was answered 200."""

    order_ref: str
    replies: list[Reply] = field(default_factory=list)


def _pay_until_done(client: Client, order_ref: str, key: str, outcome: Outcome) -> None:
    """Send the keyed payment until it is answered 200, retrying what the service said may
    be retried, after its Retry-After (shortened: the test measures, it does not wait)."""
    path = f"{client.order_path(order_ref)}/payments"
    body = {"paymentProvider": "VISA", "authorizedAmount": PAYMENT}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reply = client.post(path, body, headers={"Idempotency-Key": key})
        outcome.replies.append(reply)
        if reply.status == 200:
            return
        if reply.status != 503:
            return  # a final answer: the assertions below name it
        time.sleep(0.05)
    pytest.fail(f"{key} was never answered 200")


def test_postgres_stopped_under_a_keyed_write_load_answers_503_and_loses_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    upgrade(cluster.url)
    engine = make_engine(cluster.url)
    with Session(engine) as session, session.begin():
        key = create_key(session, [BUSINESS], "staff", "faults")
    with running_server(cluster.url, tmp_path) as server:
        setup = Client(server, key)
        refs = []
        for n in range(ORDERS):
            order = bodies.new_order([(1, "100.00", "19", "1")])
            assert setup.create_order(order).status == 200
            invoice = bodies.invoice(f"INV-F{n}-{order['orderReference']}", [1])
            path = f"{setup.order_path(order['orderReference'])}/invoices"
            assert setup.post(path, invoice).status == 200
            refs.append(order["orderReference"])

        outcomes: list[Outcome] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + LOAD_SECONDS

        def writer(w: int) -> None:
            client = Client(server, key)
            n = 0
            try:
                while time.monotonic() < stop_at:
                    outcome = Outcome(refs[(w + n) % ORDERS])
                    with lock:
                        outcomes.append(outcome)
                    _pay_until_done(client, outcome.order_ref, f"pay-{w}-{n}", outcome)
                    n += 1
            finally:
                client.close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(OUTAGE_AT)
        cluster.stop()
        down_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        cluster.start()
        back_at = time.monotonic()
        for t in threads:
            t.join(timeout=90)
        setup.close()
        log = server.log_tail(80)

    replies = [r for o in outcomes for r in o.replies]
    refused = [r for r in replies if r.status != 200]
    during = [r for r in refused if r.status == 503]
    # The outage was seen, and every refusal was an honest, retryable 503.
    assert during, "no request met the outage"
    assert [(r.status, r.raw[:200]) for r in refused if r.status != 503][:5] == []
    assert all(r.headers.get("Retry-After") for r in refused)
    assert all(r.headers["Content-Type"] == "application/problem+json" for r in refused)
    assert {r.code for r in refused} <= {"database-unavailable", "order-busy"}
    assert "Traceback" not in log, log[-3000:]
    # Nothing lost or doubled: every logical write was answered 200 and booked exactly once.
    assert all(o.replies and o.replies[-1].status == 200 for o in outcomes)
    payments = schema.payments
    engine.dispose()  # its pooled connections died with the server
    with engine.connect() as db:
        rows = db.execute(
            select(payments.c.order_reference, func.count(), func.sum(payments.c.amount))
            .where(payments.c.business_code == BUSINESS)
            .group_by(payments.c.order_reference)
        ).all()
    booked = {ref: (count, total) for ref, count, total in rows}
    expected: dict[str, int] = {}
    for o in outcomes:
        expected[o.order_ref] = expected.get(o.order_ref, 0) + 1
    assert {ref: count for ref, (count, _) in booked.items()} == expected
    assert all(total == count for count, total in booked.values())  # 1 cent each
    verify_clean(engine)
    # Writes came back within RETURN_WITHIN of PostgreSQL's return.
    first_after = min(
        (r for r in replies if r.status == 200 and r.finished > back_at),
        key=lambda r: r.finished,
    )
    assert first_after.finished - back_at < RETURN_WITHIN
    assert back_at - down_at >= OUTAGE_SECONDS
    engine.dispose()


# --- orders held locked ----------------------------------------------------------------------


def test_writes_to_held_orders_get_503_within_the_budget_and_nobody_else_waits(
    server: Server, staff_key: str, client: Client, engine: Engine, postgres_url: str
) -> None:
    held = []
    for _ in range(ORDERS):
        order = bodies.new_order([(1, "10.00", "19", "1")])
        assert client.create_order(order).status == 200
        held.append(order["orderReference"])
    other = bodies.new_order([(1, "10.00", "19", "1")])
    with Session(engine) as session, session.begin():
        other_key = create_key(session, ["2000"], "merchant", "elsewhere")
    elsewhere = Client(server, other_key)
    elsewhere_path = f"/accounting/v1/businesses/2000/customers/{elsewhere.customer}/orders"
    assert elsewhere.post(elsewhere_path, other).status == 200
    read_path = f"{elsewhere_path}/{other['orderReference']}"
    assert elsewhere.get(read_path).status == 200  # its key known, as in steady operation
    workers_before = server.ready_workers()  # steady operation: none still booting

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=False) as locker:
        locker.execute(
            "SELECT 1 FROM orders WHERE business_code = %s AND order_reference = ANY(%s) "
            "FOR UPDATE",
            (BUSINESS, held),
        )
        writes: list[Reply] = []

        def write(ref: str) -> None:
            c = Client(server, staff_key)
            try:
                reply = c.post(f"{c.order_path(ref)}/cancellations", bodies.cancellation([1]))
                writes.append(reply)
            finally:
                c.close()

        threads = [threading.Thread(target=write, args=(ref,)) for ref in held * 2]
        for t in threads:
            t.start()
        time.sleep(0.5)  # every writer is now waiting on its order's lock
        reads = [elsewhere.get(f"{elsewhere_path}/{other['orderReference']}") for _ in range(5)]
        live = [elsewhere.get("/health/live") for _ in range(5)]
        for t in threads:
            t.join(timeout=30)
        locker.rollback()

    assert len(writes) == 2 * ORDERS
    assert {(r.status, r.code) for r in writes} == {(503, "order-busy")}
    assert all(r.headers.get("Retry-After") for r in writes)
    assert max(r.elapsed for r in writes) < LOCK_TIMEOUT_MS / 1000 + 1.0
    assert all(r.status == 200 for r in reads + live)
    assert max(r.elapsed for r in reads + live) < 0.1, [r.elapsed for r in reads + live]
    assert sorted(server.workers()) == workers_before, "a worker was killed or restarted"
    assert "WORKER TIMEOUT" not in server.log_tail(200)
    for ref in held:
        assert client.order(ref)["positions"][0]["state"] == "open"
    elsewhere.close()


# --- what gunicorn refuses before the app sees it ---------------------------------------------


def _raw(server: Server, request: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri-too-long"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "headers-too-large",
        ),
        (b"BROKEN\r\n\r\n", 400, "malformed-request"),
    ],
    ids=["request line too long", "header too large", "not HTTP"],
)
def test_requests_gunicorn_refuses_are_answered_as_problem_json(
    server: Server, request_bytes: bytes, status: int, code: str
) -> None:
    answered, headers, body = _raw(server, request_bytes)

    assert answered == status
    assert headers["Content-Type"] == "application/problem+json"
    assert (body["status"], body["code"]) == (status, code)
    assert body["requestId"] == headers["X-Request-ID"]
