"""The contract tier: openapi.yaml, the API explorer, and the service under hostile input.

In-process tests use the end-to-end fixtures (every answer is checked against openapi.yaml
there too). Schemathesis and the browser talk to a real gunicorn on 127.0.0.1 that serves the
test database; its log is kept so a test can read what the service wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from app import jsoncodec
from app.api import examples
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    _every_response_matches_openapi_yaml,
    _uses_database,
    api,
    app,
    client,
    new_key,
)
from tests.live_server import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
REQUEST_TIMEOUT = (5.0, 30.0)


@dataclass(frozen=True)
class LiveServer:
    """A running gunicorn: where it listens and the file its workers log to."""

    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def live_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """gunicorn with two workers on a free port of 127.0.0.1, on the test database."""
    tmp = tmp_path_factory.mktemp("live")
    (tmp / "prometheus").mkdir()
    log = tmp / "gunicorn.log"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
        "ACCOUNTING_RATE_LIMIT_PER_MINUTE": "100000",
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2"),
        *("--timeout", "60", "app.wsgi:app"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, f"{url}/health/ready", log)
        yield LiveServer(url, log)
    finally:
        stop(process)


@dataclass(frozen=True)
class Seed001:
    """The seed 001 order, invoiced to the customer's former address, and a key for it."""

    key: str
    orders: str  # the orders URL of customer TFI2021072801 in business 1000

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Subscription-Key": self.key}

    def order_url(self) -> str:
        return f"{self.orders}/{examples.ORDER_REFERENCE}"

    def invoice_url(self) -> str:
        return f"{self.order_url()}/invoices/{examples.INVOICE_REFERENCE}"


FORMER_ADDRESS = {**examples.BILL_TO, "street": "Alte Landstr.", "streetNumber": "3"}


def seed_001_before_the_move() -> dict[str, Any]:
    """The seed's order as first created: the same positions, the customer's former street."""
    return {**examples.ORDER, "billToAddress": FORMER_ADDRESS}


@pytest.fixture
def seed_001(live_server: LiveServer, app: Flask) -> Seed001:  # noqa: F811
    """Over HTTP: a staff key, the seed 001 order (former address) and its invoice."""
    seed = Seed001(
        new_key(app, [examples.BUSINESS], "staff"),
        f"{live_server.url}/accounting/v1/businesses/{examples.BUSINESS}"
        f"/customers/{examples.CUSTOMER}/orders",
    )
    headers = {**seed.headers, "Content-Type": "application/json"}
    for url, body in (
        (seed.orders, seed_001_before_the_move()),
        (f"{seed.order_url()}/invoices", examples.INVOICE),
    ):
        response = requests.post(
            url, data=jsoncodec.dumps(body), headers=headers, timeout=REQUEST_TIMEOUT
        )
        assert response.status_code == 200, response.text
    return seed
