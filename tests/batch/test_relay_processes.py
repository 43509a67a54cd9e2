"""`accounting relay` as real processes on PostgreSQL: SIGKILL mid-delivery loses nothing, and
two relays never send one event at once.

The receiver runs on 127.0.0.1 and verifies every delivery's signature; events come from the
API's writes (the Flask app in this process, on the test database).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from tests.batch.processes import start
from tests.e2e.conftest import BASE, Api, app_for, new_key
from tests.webhook_receiver import Receiver

WAIT = 60.0  # seconds before the test fails instead of hanging


@pytest.fixture(scope="module")
def app(engine: Engine, database_url: str) -> Flask:
    return app_for(engine, database_url, RATE_LIMIT_PER_MINUTE=0)


@pytest.fixture
def api(app: Flask, engine: Engine) -> Api:
    return Api(app.test_client(), new_key(app, ["1000"]))


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.down()


def relay(
    started: list[subprocess.Popen[bytes]], database_url: str, log: Path, timeout: str = "5"
) -> subprocess.Popen[bytes]:
    args = ("relay", "--retry-base", "0.05", "--timeout", timeout, "--threads", "4")
    return start(started, database_url, log, *args)


def subscribed(api: Api, receiver: Receiver) -> None:
    response = api.post(f"{BASE}/1000/webhooks", {"url": receiver.url})
    assert response.status_code == 200, response.get_data(as_text=True)
    receiver.secret = response.get_json()["secret"]


# orderCreated; invoiceCreated, documentCreated, balanceUpdated; paymentReceived,
# balanceUpdated; returnCreated, refundCreated, balanceUpdated.
EVENTS = 9  # per lifecycle


def lifecycle(api: Api) -> None:
    order, _ = api.invoiced_order()
    ref = order["orderReference"]
    assert api.pay(ref).status_code == 200
    assert api.return_items(ref, f"R-{ref}", [(1, 1)]).status_code == 200


def feed_ids(api: Api) -> list[str]:
    response = api.get(f"{BASE}/1000/events?limit=1000")
    body = json.loads(response.get_data(as_text=True), parse_float=Decimal)
    return [e["id"] for e in body["events"]]


def wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def stopped(process: subprocess.Popen[bytes], log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=WAIT) == 0, log.read_text()
    return log.read_text()


def test_a_relay_killed_mid_delivery_loses_nothing(
    api: Api, database_url: str, tmp_path: Path, processes: Any, receivers: list[Receiver]
) -> None:
    receiver = Receiver(delay_s=1.0).up()
    receivers.append(receiver)
    subscribed(api, receiver)
    lifecycle(api)
    first = relay(processes, database_url, tmp_path / "first.log")
    assert receiver.arrived.wait(WAIT), (tmp_path / "first.log").read_text()
    os.killpg(first.pid, signal.SIGKILL)  # while the receiver is still answering
    first.wait(timeout=WAIT)
    receiver.delay_s = 0.0

    second = relay(processes, database_url, tmp_path / "second.log")
    # Every event, and the one in flight at the kill a second time.
    wait_for(lambda: len(receiver.ids()) == EVENTS + 1, "not every event arrived")
    stopped(second, tmp_path / "second.log")

    assert list(receiver.events()) == feed_ids(api)  # each event, in order
    assert receiver.refused == 0
    # The event in flight when the relay died came again, under the same webhook-id.
    assert receiver.ids().count(feed_ids(api)[0]) == 2
    assert len(receiver.ids()) == EVENTS + 1


def test_two_relays_never_send_one_event_at_once(
    api: Api, database_url: str, tmp_path: Path, processes: Any, receivers: list[Receiver]
) -> None:
    for _ in range(3):
        receiver = Receiver(delay_s=0.02).up()
        receivers.append(receiver)
        subscribed(api, receiver)
    for _ in range(3):
        lifecycle(api)

    both = [relay(processes, database_url, tmp_path / f"relay{n}.log") for n in (1, 2)]
    for receiver in receivers:
        wait_for(lambda r=receiver: len(r.ids()) >= 3 * EVENTS, "not every event arrived")
    for n, process in enumerate(both, start=1):
        stopped(process, tmp_path / f"relay{n}.log")

    expected = feed_ids(api)
    for receiver in receivers:
        assert receiver.ids() == expected  # once each, in order: never two at once
        assert receiver.most_at_once == 1 and receiver.refused == 0


def test_a_hanging_endpoint_holds_up_no_other(
    api: Api, database_url: str, tmp_path: Path, processes: Any, receivers: list[Receiver]
) -> None:
    hanging, healthy = Receiver(delay_s=30.0).up(), Receiver().up()
    receivers += [hanging, healthy]
    for receiver in (hanging, healthy):
        subscribed(api, receiver)
    lifecycle(api)
    started = time.monotonic()

    running = relay(processes, database_url, tmp_path / "relay.log", timeout="1")
    wait_for(lambda: len(healthy.ids()) == EVENTS, "the healthy endpoint waited on the hanging")
    took = time.monotonic() - started
    hanging.delay_s = 0.0
    wait_for(lambda: len(set(hanging.ids())) == EVENTS, "the hanging endpoint never recovered")
    stopped(running, tmp_path / "relay.log")

    assert took < 10, took
    assert healthy.ids() == feed_ids(api)
    assert list(hanging.events()) == feed_ids(api)  # in order, whatever came twice
