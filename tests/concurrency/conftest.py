"""Concurrency against a real gunicorn with several worker processes, on PostgreSQL only.

Every request goes to 127.0.0.1, every wait is bounded, and every race starts from a barrier so
that the requests really meet inside the service (SPEC section 7).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import jsoncodec
from app.adapters.db import make_session_factory
from app.adapters.keys import create_key
from app.service.verify import verify
from tests.live_server import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
BASE = "/accounting/v1/businesses"
BUSINESS = "1000"
CUSTOMER = "TFI2021072801"
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read: a stuck request fails the test, never hangs it

T = TypeVar("T")


# --- the server -----------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running gunicorn: where it listens, its master's pid and its log."""

    base_url: str
    pid: int
    log: Path

    def workers(self) -> list[int]:
        """The master's children: its worker processes."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True, timeout=10
        )
        return [int(pid) for pid in out.stdout.split()]

    def ready_workers(self, timeout: float = 30) -> list[int]:
        """The workers, once every one has built its app and takes requests (gunicorn.conf.py
        logs it): a worker that an earlier test killed may still be booting."""
        deadline = time.monotonic() + timeout
        while True:
            workers = sorted(self.workers())
            log = self.log.read_text(errors="replace")
            if workers and all(f"Worker ready (pid: {pid})" in log for pid in workers):
                return workers
            assert time.monotonic() < deadline, f"workers not ready:\n{self.log_tail()}"
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.fail(
            "the concurrency tests need PostgreSQL (row locks, advisory locks): "
            "set ACCOUNTING_TEST_DATABASE_URL to a postgresql+psycopg:// URL"
        )
    return database_url


@contextmanager
def running_server(database_url: str, tmp: Path, **env: str) -> Iterator[Server]:
    """gunicorn.conf.py with WORKERS workers on a free local port for this database."""
    metrics = tmp / "prometheus"
    metrics.mkdir(exist_ok=True)
    log = tmp / "gunicorn.log"
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "ACCOUNTING_LOG_LEVEL": "WARNING",
        "ACCOUNTING_RATE_LIMIT_PER_MINUTE": "0",  # off: the races are tested, not the limiter
        **env,
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"),
        *("--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}"),
        "--no-control-socket",  # else every instance shares $HOME/.gunicorn/gunicorn.ctl
        "app.wsgi:app",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, f"{base_url}/health/ready", log)
        yield Server(base_url, process.pid, log)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The tier's gunicorn on the suite's database, stopped at the end."""
    with running_server(postgres_url, tmp_path_factory.mktemp("gunicorn")) as running:
        yield running


@pytest.fixture
def staff_key(engine: Engine) -> str:
    """A staff key for business 1000 (tables, keys included, are emptied after each test)."""
    with Session(engine) as session, session.begin():
        return create_key(session, [BUSINESS], "staff", "concurrency")


def verify_clean(engine: Engine) -> None:
    """`accounting verify` over the whole database finds nothing."""
    checked, violations = verify(make_session_factory(engine))
    for violation in violations:
        print(violation)
    assert violations == [], f"{len(violations)} violations in {checked} orders"
    assert checked > 0


# --- the client -----------------------------------------------------------------------


@dataclass
class Reply:
    """One HTTP answer: status, headers, the raw body and the body parsed with Decimals."""

    status: int
    headers: Mapping[str, str]  # case-insensitive, as requests reads them
    raw: bytes
    elapsed: float
    json: Any = field(default=None)
    finished: float = 0.0  # time.monotonic() when the answer was in

    @property
    def code(self) -> str | None:
        return self.json.get("code") if isinstance(self.json, dict) else None

    @property
    def replayed(self) -> bool:
        return self.headers.get("Idempotent-Replayed") == "true"


class Client:
    """A merchant's client for business 1000 and one customer: one requests.Session each.

    requests.Session is not thread-safe, so every thread builds its own Client.
    """

    def __init__(self, server: Server, key: str, customer: str = CUSTOMER):
        self.server, self.customer = server, customer
        self.http = requests.Session()
        self.http.headers.update({"X-Subscription-Key": key})

    def close(self) -> None:
        self.http.close()

    def orders_path(self) -> str:
        return f"{BASE}/{BUSINESS}/customers/{self.customer}/orders"

    def order_path(self, order_ref: str) -> str:
        return f"{self.orders_path()}/{order_ref}"

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send once; connection errors are raised (requests.ConnectionError)."""
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = jsoncodec.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        started = time.monotonic()
        response = self.http.request(
            method,
            self.server.base_url + path,
            data=data,
            headers=all_headers,
            timeout=REQUEST_TIMEOUT,
            allow_redirects=False,
        )
        raw = response.content
        parsed = (
            jsoncodec.loads(raw)
            if raw and "json" in response.headers.get("Content-Type", "")
            else None
        )
        finished = time.monotonic()
        return Reply(
            response.status_code, response.headers, raw, finished - started, parsed, finished
        )

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return self.request("POST", path, body, headers)

    def put(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return self.request("PUT", path, body, headers)

    # --- use cases ---
    def create_order(self, order: dict[str, Any]) -> Reply:
        return self.post(self.orders_path(), order)

    def order(self, order_ref: str) -> dict[str, Any]:
        reply = self.get(self.order_path(order_ref))
        assert reply.status == 200, reply.raw
        body: dict[str, Any] = reply.json
        return body

    def refunds(self, order_ref: str) -> list[dict[str, Any]]:
        reply = self.get(f"{self.order_path(order_ref)}/refunds")
        assert reply.status == 200, reply.raw
        refunds: list[dict[str, Any]] = reply.json["refunds"]
        return refunds


@pytest.fixture
def client(server: Server, staff_key: str) -> Iterator[Client]:
    """A client for the test's own set-up and final reads (main thread only)."""
    c = Client(server, staff_key)
    yield c
    c.close()


def race(
    server: Server, key: str, count: int, act: Callable[[Client, int], T], timeout: float = 60
) -> list[T]:
    """Run act(client, i) for i in range(count) on count threads released together.

    Each thread builds its own client (and session) first; a barrier then lets all of them
    send at the same moment. Results come back in the order of i.
    """
    barrier = threading.Barrier(count, timeout=15)

    def one(i: int) -> T:
        c = Client(server, key)
        try:
            barrier.wait()
            return act(c, i)
        finally:
            c.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one, i) for i in range(count)]
        return [f.result(timeout=timeout) for f in futures]


def no_server_errors(server: Server, replies: list[Reply]) -> None:
    """No answer was a 5xx; the server's log tail comes with the failure."""
    errors = [(r.status, r.raw[:300]) for r in replies if r.status >= 500]
    assert errors == [], f"{errors}\n--- gunicorn log ---\n{server.log_tail()}"
