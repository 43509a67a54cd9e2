"""The event feed under concurrent writes on PostgreSQL.

A consumer that only polls `GET .../events` sees every committed event exactly once, in order
per order, even an event whose transaction inserted it early and committed late (had the feed
numbered events as they were inserted, a cursor would have moved past it for good).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, Engine, insert, select

from app.adapters.schema import outbox
from tests.e2e.conftest import BASE, Api, app_for, new_key

WRITERS, ORDERS_EACH = 4, 6


@pytest.fixture(scope="module")
def app(engine: Engine, database_url: str) -> Flask:
    return app_for(engine, database_url, RATE_LIMIT_PER_MINUTE=0)


@pytest.fixture
def key(app: Flask) -> str:
    return new_key(app, ["1000"])


class Consumer:
    """Polls the feed from the start, as a merchant would, and keeps what it saw."""

    def __init__(self, app: Flask, key: str, limit: int = 7):
        self.api = Api(app.test_client(), key)
        self.limit, self.after = limit, 0
        self.seen: list[dict[str, Any]] = []

    def poll(self) -> int:
        response = self.api.get(f"{BASE}/1000/events?after={self.after}&limit={self.limit}")
        assert response.status_code == 200, response.get_data(as_text=True)
        body = json.loads(response.get_data(as_text=True), parse_float=Decimal)
        self.seen += body["events"]
        self.after = body["next"]
        return len(body["events"])

    def drain(self) -> None:
        while self.poll():
            pass


def begin_late_event(engine: Engine) -> tuple[Connection, str]:
    """A transaction that writes an event now and commits when the test says."""
    connection = engine.connect()
    connection.begin()
    event_id = str(uuid.uuid4())
    connection.execute(
        insert(outbox).values(
            business_code="1000",
            event_id=event_id,
            order_reference="LATE",
            topic="orderCreated",
            payload={"orderReference": "LATE", "orderVersion": 1},
            created_at=datetime.now(UTC),
        )
    )
    return connection, event_id


def committed_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(select(outbox.c.event_id)))


# orderCreated; invoiceCreated, documentCreated, balanceUpdated; paymentReceived,
# balanceUpdated; returnCreated, refundCreated, balanceUpdated.
EVENTS_PER_LIFECYCLE = 9


def lifecycle(api: Api) -> None:
    order, _ = api.invoiced_order()
    ref = order["orderReference"]
    assert api.pay(ref).status_code == 200
    assert api.return_items(ref, f"R-{ref}", [(1, 1)]).status_code == 200


def test_an_event_committed_late_is_not_passed_over_by_a_cursor(
    app: Flask, key: str, engine: Engine
) -> None:
    consumer = Consumer(app, key)
    late, late_id = begin_late_event(engine)
    try:
        lifecycle(Api(app.test_client(), key))
        consumer.drain()
        before = [e["id"] for e in consumer.seen]
        late.commit()
    finally:
        late.close()
    consumer.drain()

    assert late_id not in before and len(before) == EVENTS_PER_LIFECYCLE
    assert [e["id"] for e in consumer.seen] == [*before, late_id]


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_consumer_polling_during_concurrent_writes_sees_every_event_once_in_order_per_order(
    app: Flask, key: str, engine: Engine, stop: threading.Event
) -> None:
    failures: list[BaseException] = []
    late_ids: list[str] = []

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as error:
                failures.append(error)

        return run

    def write() -> None:
        api = Api(app.test_client(), key)
        for _ in range(ORDERS_EACH):
            lifecycle(api)

    def commit_late() -> None:
        while not stop.is_set():
            late, late_id = begin_late_event(engine)
            try:
                time.sleep(0.15)  # others commit meanwhile
                late.commit()
                late_ids.append(late_id)
            finally:
                late.close()

    consumer = Consumer(app, key)
    writers = [threading.Thread(target=guarded(write)) for _ in range(WRITERS)]
    latecomer = threading.Thread(target=guarded(commit_late))
    for thread in [*writers, latecomer]:
        thread.start()
    while any(w.is_alive() for w in writers):
        consumer.poll()
    stop.set()
    latecomer.join()
    consumer.drain()

    assert failures == []
    seen = [e["id"] for e in consumer.seen]
    assert len(seen) == len(set(seen)), "an event was seen twice"
    assert set(seen) == committed_ids(engine)
    assert len(seen) == WRITERS * ORDERS_EACH * EVENTS_PER_LIFECYCLE + len(late_ids)
    assert len(late_ids) >= 2
    versions: dict[str, list[int]] = {}
    for event in consumer.seen:
        versions.setdefault(event["data"]["orderReference"], []).append(
            event["data"]["orderVersion"]
        )
    for reference, seen_versions in versions.items():
        if reference != "LATE":
            assert seen_versions == sorted(seen_versions), reference
