"""Idempotency keys are kept at least 24 hours, then purged: by hand or by the worker daily."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import Engine, select, update

from app import batch_cli
from app.adapters import idempotency
from app.adapters.schema import idempotency_keys, tax_correction_jobs
from app.cli import main
from app.config import BadSetting, duration, idempotency_retention, worker_idempotency_retention
from app.factory import create_app
from tests import factories
from tests.e2e.conftest import BASE, Api, new_key

HOURS_OLD = (1, 30, 47, 49, 72)
JOB = {
    "country": "DE",
    "from": "2020-07-01",
    "to": "2020-12-31",
    "vatType": "NORMAL",
    "fromRate": 19,
    "toRate": 16,
    "mode": "keep-gross",
}


def run(database_url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url, **env})


def stored(engine: Engine, *hours_old: int) -> None:
    """Keys of business 1000 stored this many hours ago, named after their age."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            idempotency_keys.insert(),
            [
                {
                    "business_code": "1000",
                    "key": f"{hours}h",
                    "request_hash": "0" * 64,
                    "created_at": now - timedelta(hours=hours),
                }
                for hours in hours_old
            ],
        )


def kept(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        keys = connection.execute(
            select(idempotency_keys.c.key).order_by(idempotency_keys.c.created_at.desc())
        )
        return list(keys.scalars())


# --- ages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("48h", timedelta(hours=48)),
        ("2d", timedelta(days=2)),
        ("90m", timedelta(minutes=90)),
        (" 36H ", timedelta(hours=36)),
        ("0h", timedelta(0)),
    ],
)
def test_an_age_is_a_whole_number_and_a_unit(text: str, length: timedelta) -> None:
    assert duration(text) == length


@pytest.mark.parametrize("text", ["48", "h", "1.5h", "-1h", "48 hours", "", "2w", "1d2h"])
def test_anything_else_is_not_an_age(text: str) -> None:
    with pytest.raises(BadSetting, match="is not a duration"):
        duration(text)


@pytest.mark.parametrize("text", ["24h", "1d", "1440m", "48h", "30d"])
def test_keys_may_be_kept_24_hours_or_longer(text: str) -> None:
    assert idempotency_retention(text) == duration(text)


@pytest.mark.parametrize("text", ["23h", "90m", "1439m", "0d"])
def test_keys_are_never_kept_less_than_24_hours(text: str) -> None:
    with pytest.raises(BadSetting, match="kept at least 24 h"):
        idempotency_retention(text)


def test_the_workers_retention_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCOUNTING_IDEMPOTENCY_RETENTION", raising=False)
    assert worker_idempotency_retention() == timedelta(hours=48)
    monkeypatch.setenv("ACCOUNTING_IDEMPOTENCY_RETENTION", "3d")
    assert worker_idempotency_retention() == timedelta(days=3)
    monkeypatch.setenv("ACCOUNTING_IDEMPOTENCY_RETENTION", "off")
    assert worker_idempotency_retention() is None
    monkeypatch.setenv("ACCOUNTING_IDEMPOTENCY_RETENTION", "12h")
    with pytest.raises(BadSetting):
        worker_idempotency_retention()


# --- accounting idempotency purge -----------------------------------------------------------


def test_purge_deletes_the_keys_older_than_48_hours_by_default(
    database_url: str, engine: Engine
) -> None:
    stored(engine, *HOURS_OLD)

    result = run(database_url, "idempotency", "purge")

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("purged 2 idempotency keys older than 48h (stored before ")
    assert result.stdout == ""
    assert kept(engine) == ["1h", "30h", "47h"]


def test_purge_takes_the_age_given(database_url: str, engine: Engine) -> None:
    stored(engine, *HOURS_OLD)

    result = run(database_url, "idempotency", "purge", "--older-than", "1d")

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("purged 4 idempotency keys older than 1d")
    assert kept(engine) == ["1h"]


def test_purge_refuses_an_age_below_24_hours_and_deletes_nothing(
    database_url: str, engine: Engine
) -> None:
    stored(engine, *HOURS_OLD)

    result = run(database_url, "idempotency", "purge", "--older-than", "90m")

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: idempotency keys are kept at least 24 h (the contract's replay window), not 90m\n"
    )
    assert len(kept(engine)) == len(HOURS_OLD)


def test_a_purge_goes_a_chunk_per_transaction_until_nothing_is_left(engine: Engine) -> None:
    stored(engine, *range(50, 55))
    before = datetime.now(UTC) - timedelta(hours=48)

    assert idempotency.purge(engine, before, chunk=2, should_stop=lambda: True) == 2
    assert idempotency.purge(engine, before, chunk=2) == 3
    assert kept(engine) == []


def test_a_keyed_replay_within_24_hours_still_replays_after_a_purge(
    engine: Engine, database_url: str
) -> None:
    app = create_app({"DATABASE_URL": database_url, "ENGINE": engine, "TESTING": True})
    api = Api(app.test_client(), new_key(app, ["1000"], "merchant"))
    fresh, old = factories.OrderFactory(), factories.OrderFactory()
    first = api.post(api.orders_path(), fresh, headers={"Idempotency-Key": "fresh"})
    assert first.status_code == 200
    assert api.post(api.orders_path(), old, headers={"Idempotency-Key": "old"}).status_code == 200
    with engine.begin() as connection:
        connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "old")
            .values(created_at=datetime.now(UTC) - timedelta(days=3))
        )

    purged = run(database_url, "idempotency", "purge", "--older-than", "24h")

    assert purged.stderr.startswith("purged 1 idempotency keys")
    replay = api.post(api.orders_path(), fresh, headers={"Idempotency-Key": "fresh"})
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    anew = api.post(api.orders_path(), old, headers={"Idempotency-Key": "old"})
    assert anew.status_code == 409  # evaluated again: the order exists, nothing replayed
    assert "Idempotent-Replayed" not in anew.headers


# --- the worker's daily purge ---------------------------------------------------------------


def test_the_worker_purges_keys_older_than_48_hours(database_url: str, engine: Engine) -> None:
    stored(engine, *HOURS_OLD)

    result = run(database_url, "worker", "--once", "--poll", "0.05")

    assert result.exit_code == 0, result.output
    assert "worker: purged 2 idempotency keys older than 48 h\n" in result.stderr
    assert kept(engine) == ["1h", "30h", "47h"]


def test_the_workers_retention_is_configurable(database_url: str, engine: Engine) -> None:
    stored(engine, *HOURS_OLD)

    by_environment = run(database_url, "worker", "--once", ACCOUNTING_IDEMPOTENCY_RETENTION="60h")
    assert by_environment.exit_code == 0, by_environment.output
    assert kept(engine) == ["1h", "30h", "47h", "49h"]
    by_option = run(database_url, "worker", "--once", "--idempotency-retention", "1d")
    assert by_option.exit_code == 0, by_option.output
    assert kept(engine) == ["1h"]


def test_the_worker_can_leave_the_keys_to_someone_else(database_url: str, engine: Engine) -> None:
    stored(engine, *HOURS_OLD)

    result = run(database_url, "worker", "--once", "--idempotency-retention", "off")

    assert result.exit_code == 0, result.output
    assert "purged" not in result.stderr
    assert len(kept(engine)) == len(HOURS_OLD)


def test_the_worker_refuses_a_retention_below_24_hours(database_url: str, engine: Engine) -> None:
    result = run(database_url, "worker", "--once", "--idempotency-retention", "12h")

    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "kept at least 24 h" in result.stderr


def test_the_purge_runs_beside_the_tax_corrections_never_before_them(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the purge waits, the worker corrects a whole job; a purge in the worker's own
    loop, before the job, would wait here for ever."""
    app = create_app({"DATABASE_URL": database_url, "ENGINE": engine, "TESTING": True})
    queue_a_job(app)
    stored(engine, 72)
    purge_started: list[datetime] = []
    job_done_meanwhile: list[bool] = []
    real_purge = idempotency.purge

    def slow_purge(purging: Engine, before: datetime, **options: Any) -> int:
        purge_started.append(datetime.now(UTC))
        job_done_meanwhile.append(until(lambda: job_status(engine) == "completed"))
        return real_purge(purging, before, **options)

    monkeypatch.setattr(batch_cli.idempotency, "purge", slow_purge)

    result = run(database_url, "worker", "--once", "--poll", "0.05")

    assert result.exit_code == 0, result.output
    assert job_done_meanwhile == [True]
    assert purge_started[0] < job_finished_at(engine)
    assert "invoices processed" in result.stderr
    assert "worker: purged 1 idempotency keys older than 48 h" in result.stderr


def queue_a_job(app: Flask) -> None:
    """Three invoices dated in the second half of 2020, and a job to correct them."""
    staff = Api(app.test_client(), new_key(app, ["1000"], "staff"))
    for _ in range(3):
        order = factories.OrderFactory(orderDate="2020-08-01")
        assert staff.create_order(order).status_code == 200
        invoice = factories.InvoiceFactory(
            invoiceDate="2020-08-10", dueDate="2020-09-10", dispatchDate="2020-08-09"
        )
        assert staff.invoice(order["orderReference"], invoice).status_code == 200
    assert staff.post(f"{BASE}/1000/tax-corrections", JOB).status_code == 202


def until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def job_status(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(tax_correction_jobs.c.status))


def job_finished_at(engine: Engine) -> datetime:
    with engine.connect() as connection:
        finished = connection.scalar(select(tax_correction_jobs.c.finished_at))
    assert finished is not None
    return finished
