"""API keys and the per-key rate limit (SPEC section 9).

A key is printed once when created, stored only as its hash, and never written to a log line;
each key may send RATE_LIMIT_PER_MINUTE requests in any minute, then gets 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from app import cli
from app.adapters.db import make_engine
from app.adapters.schema import api_keys
from app.factory import create_app
from tests import factories
from tests.e2e.conftest import BASE, Api, new_key, problem

LIMIT = 3


@pytest.fixture
def limited(engine: Engine, database_url: str) -> Flask:
    """The service with an allowance of three requests a minute per key."""
    config = {"DATABASE_URL": database_url, "ENGINE": engine, "TESTING": True}
    return create_app({**config, "RATE_LIMIT_PER_MINUTE": LIMIT})


def report(api: Api) -> str:
    return f"{BASE}/{api.business}/tax-report?from=2024-01-01&to=2024-12-31"


# --- the rate limit ---------------------------------------------------------------------


def test_a_key_over_its_allowance_gets_429_with_retry_after(limited: Flask) -> None:
    api = Api(limited.test_client(), new_key(limited, ["1000"]))
    allowed = [api.get(report(api)) for _ in range(LIMIT)]

    refused = api.get(report(api))

    assert [r.status_code for r in allowed] == [200] * LIMIT
    body = problem(refused, 429, "rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert body["requestId"] == refused.headers["X-Request-ID"]


def test_writes_count_too_and_a_refused_write_writes_nothing(limited: Flask) -> None:
    api = Api(limited.test_client(), new_key(limited, ["1000"]))
    order = factories.OrderFactory()
    for _ in range(LIMIT):
        api.get(report(api))

    refused = api.create_order(order)

    problem(refused, 429, "rate-limited")
    other = Api(limited.test_client(), new_key(limited, ["1000"]))
    problem(other.get(other.order_path(order["orderReference"])), 404, "not-found")


def test_the_key_counts_the_same_in_either_header(limited: Flask) -> None:
    api = Api(limited.test_client(), new_key(limited, ["1000"]))
    for _ in range(LIMIT):
        assert api.get(report(api)).status_code == 200

    as_bearer = api.client.get(report(api), headers={"Authorization": f"Bearer {api.key}"})

    problem(as_bearer, 429, "rate-limited")


def test_each_key_has_its_own_allowance(limited: Flask) -> None:
    busy = Api(limited.test_client(), new_key(limited, ["1000"]))
    calm = Api(limited.test_client(), new_key(limited, ["1000"]))
    for _ in range(LIMIT + 1):
        busy.get(report(busy))

    assert calm.get(report(calm)).status_code == 200


def test_knowing_a_keys_prefix_does_not_use_up_its_allowance(limited: Flask) -> None:
    victim = Api(limited.test_client(), new_key(limited, ["1000"]))
    forged = victim.key[:12] + "x" * (len(victim.key) - 12)
    for _ in range(LIMIT + 1):
        victim.client.get(report(victim), headers={"X-Subscription-Key": forged})

    assert victim.get(report(victim)).status_code == 200


def test_health_the_document_and_the_explorer_are_never_limited(limited: Flask) -> None:
    client = limited.test_client()

    answers = [client.get(path) for path in ("/health/live", "/openapi.yaml", "/docs") * LIMIT]

    assert {r.status_code for r in answers} == {200}


def test_a_limit_of_zero_turns_the_limit_off(engine: Engine, database_url: str) -> None:
    config = {"DATABASE_URL": database_url, "ENGINE": engine, "TESTING": True}
    unlimited = create_app({**config, "RATE_LIMIT_PER_MINUTE": 0})
    api = Api(unlimited.test_client(), new_key(unlimited, ["1000"]))

    assert {api.get(report(api)).status_code for _ in range(10)} == {200}


def test_an_address_failing_to_authenticate_is_limited_but_known_keys_go_on(
    engine: Engine, database_url: str
) -> None:
    config = {"DATABASE_URL": database_url, "ENGINE": engine, "TESTING": True}
    app = create_app({**config, "RATE_LIMIT_PER_MINUTE": 0, "AUTH_FAILURES_PER_MINUTE": LIMIT})
    known = Api(app.test_client(), new_key(app, ["1000"]))
    assert known.get(report(known)).status_code == 200
    stranger = Api(app.test_client(), "aas_" + "x" * 40)
    guesses = [stranger.get(report(stranger)) for _ in range(LIMIT)]

    refused = stranger.get(report(stranger))
    fresh = Api(app.test_client(), new_key(app, ["1000"]))

    assert [r.status_code for r in guesses] == [401] * LIMIT
    problem(refused, 429, "rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert known.get(report(known)).status_code == 200
    problem(fresh.get(report(fresh)), 429, "rate-limited")  # until the window frees up


# --- keys are printed once, stored hashed, never logged ---------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything the service logs, formatted as it writes it (JSON lines), debug included."""
    root = logging.getLogger()
    service = next(h for h in root.handlers if getattr(h, "_accounting", False))
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(service.formatter)
    for log_filter in service.filters:
        handler.addFilter(log_filter)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield captured
    root.setLevel(level)
    root.removeHandler(handler)


@pytest.fixture
def command_line(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CommandLine]:
    """`accounting keys create` on the test database; its engines are disposed afterwards
    (the command leaves its engine open, which only a process that goes on notices)."""
    engines: list[Engine] = []

    def tracked(url: str, **options: Any) -> Engine:
        engines.append(make_engine(url, **options))
        return engines[-1]

    monkeypatch.setattr("app.adapters.db.make_engine", tracked)
    yield CommandLine(database_url)
    for engine in engines:
        engine.dispose()


@dataclass(frozen=True)
class CommandLine:
    database_url: str

    def create_key(self, *args: str) -> tuple[str, str]:
        """Run `accounting keys create`; return (the key on the last line, all output)."""
        result = CliRunner().invoke(
            cli.main,
            ["keys", "create", "--business", "1000", "--role", "merchant", *args],
            env={"DATABASE_URL": self.database_url},
        )
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()[-1], result.output


def test_a_new_key_is_printed_once_on_the_last_line(command_line: CommandLine) -> None:
    key, output = command_line.create_key()

    assert key.startswith("aas_")
    assert output.count(key) == 1


def test_a_new_key_is_stored_only_as_its_hash(command_line: CommandLine, engine: Engine) -> None:
    key, _ = command_line.create_key("--name", "shop backend")

    with engine.connect() as connection:
        rows = connection.execute(select(api_keys)).mappings().all()

    assert [row["key_hash"] for row in rows] == [hashlib.sha256(key.encode()).digest()]
    assert rows[0]["prefix"] == key[:12]
    assert not any(key in str(value) for row in rows for value in row.values())


def test_the_key_never_appears_in_the_logs(
    command_line: CommandLine, client: FlaskClient, log_lines: io.StringIO
) -> None:
    key, _ = command_line.create_key()
    merchant = Api(client, key)
    order = factories.OrderFactory()
    bearer = {"Authorization": f"Bearer {key}"}

    merchant.create_order(order)
    merchant.get(merchant.order_path(order["orderReference"]))
    client.get(merchant.order_path("NOPE1"), headers=bearer)
    merchant.post(merchant.orders_path(), {"unknown": key})
    Api(client, key, business="2000").get(merchant.order_path("ANY1"))
    client.get(merchant.orders_path() + "/X1", headers={"X-Subscription-Key": key + "x"})
    merchant.get("/nowhere")

    logged = log_lines.getvalue()
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert len(requests) == 7
    assert {line["key_prefix"] for line in requests} >= {key[:12]}
    assert key not in logged
    assert key[12:] not in logged
