"""What merchants are told: the event feed and signed webhooks, on PostgreSQL and SQLite.

A merchant polls `GET .../events` or subscribes a URL; the relay (run here in the test's
process) signs each event per Standard Webhooks and sends it to a real receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from app.service.relay import Relay, Settings
from tests import factories
from tests.e2e.conftest import BASE, Api, new_key, problem
from tests.webhook_receiver import Receiver

FAST = Settings(timeout_s=2.0, base_delay_s=0.05, max_delay_s=0.2, poll_s=0.01)
Body = dict[str, Any]


def exact(response: Any) -> Any:
    return json.loads(response.get_data(as_text=True), parse_float=Decimal)


def feed(api: Api, query: str = "") -> Body:
    response = api.get(f"{BASE}/{api.business}/events{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body: Body = exact(response)
    return body


def all_events(api: Api, page: int = 1000, types: str = "") -> list[Body]:
    """Every event of the feed, polled page by page from the start."""
    found: list[Body] = []
    after = 0
    while True:
        body = feed(api, f"?after={after}&limit={page}{types}")
        found += body["events"]
        if not body["events"]:
            assert body["next"] == after
            return found
        after = body["next"]


def lifecycle(api: Api) -> str:
    """An order invoiced, paid, partly returned and given a goodwill: refunds follow."""
    order, _ = api.invoiced_order()
    ref = order["orderReference"]
    assert api.pay(ref).status_code == 200
    assert api.return_items(ref, f"R-{ref}", [(1, 1)]).status_code == 200
    assert api.goodwill(ref, f"G-{ref}", [(2, Decimal("5.00"))]).status_code == 200
    return ref


LIFECYCLE_TYPES = [
    "orderCreated",
    "invoiceCreated",
    "documentCreated",
    "balanceUpdated",
    "paymentReceived",
    "balanceUpdated",
    "returnCreated",
    "refundCreated",
    "balanceUpdated",
    "goodwillCreated",
    "refundCreated",
    "balanceUpdated",
]


def test_every_change_of_an_order_is_in_the_feed_in_order_with_what_a_merchant_needs(
    api: Api,
) -> None:
    ref = lifecycle(api)

    events = all_events(api)

    assert [e["type"] for e in events] == LIFECYCLE_TYPES
    assert len({e["id"] for e in events}) == len(events)
    assert {e["businessCode"] for e in events} == {"1000"}
    assert all(datetime.fromisoformat(e["occurredAt"]).tzinfo for e in events)
    invoice, document, payment, returned, refund = (
        events[1]["data"],
        events[2]["data"],
        events[4]["data"],
        events[6]["data"],
        events[7]["data"],
    )
    assert invoice["orderReference"] == ref and invoice["version"] == 1
    [issued] = document["documents"]
    assert (issued["documentType"], issued["version"]) == ("invoice", 1)
    assert issued["path"].endswith("/versions/1/document")
    assert (invoice["grossTotal"], invoice["netTotal"], invoice["vatTotal"]) == (
        Decimal("35.70"), Decimal("30.00"), Decimal("5.70"),
    )  # fmt: skip
    assert (payment["amount"], payment["paymentProvider"]) == (Decimal("35.70"), "VISA")
    assert (returned["returnReference"], returned["grossTotal"]) == (f"R-{ref}", Decimal("11.90"))
    assert (refund["amount"], refund["status"]) == (Decimal("11.90"), "pending")
    assert refund["refundId"] == api.refunds(ref)[0]["id"]
    assert events[-1]["data"]["totals"]["balance"] == Decimal("0.00")
    assert events[-1]["data"]["orderVersion"] == api.order(ref)["version"]


def test_a_correction_tells_the_new_version_and_its_credit_note(api: Api) -> None:
    order, invoice = api.invoiced_order()
    items = [dict(i) for i in order["items"]]
    items[0].update(grossUnitPrice=Decimal("9.90"), vatAmount=Decimal("1.58"))
    body = factories.correction({**order, "items": items}, invoice, goodwillReference="GW-EVT-1")
    response = api.correct(order["orderReference"], invoice["invoiceReference"], body)
    assert response.status_code == 200, response.get_data(as_text=True)

    corrected = all_events(api, types="&types=invoiceCorrected")

    [event] = corrected
    assert event["data"]["invoiceReference"] == invoice["invoiceReference"]
    assert (event["data"]["version"], event["data"]["previousVersion"]) == (2, 1)
    assert event["data"]["creditNoteReference"] == "GW-EVT-1"
    assert (event["data"]["grossTotal"], event["data"]["previousGrossTotal"]) == (
        Decimal("33.70"), Decimal("35.70"),
    )  # fmt: skip
    _, reissued = all_events(api, types="&types=documentCreated")
    assert reissued["data"]["orderVersion"] == event["data"]["orderVersion"]
    note, version = reissued["data"]["documents"]
    assert (note["documentType"], note["creditNoteReference"]) == ("creditNote", "GW-EVT-1")
    assert (version["documentType"], version["version"]) == ("invoice", 2)
    for document in note, version:
        assert api.get(document["path"]).status_code == 200


def test_a_cursor_pages_through_the_feed_and_types_select_events(api: Api) -> None:
    lifecycle(api)

    paged = all_events(api, page=2)
    payments = all_events(api, types="&types=paymentReceived,refundCreated")

    assert paged == all_events(api)
    assert [e["type"] for e in payments] == ["paymentReceived", "refundCreated", "refundCreated"]
    assert feed(api, f"?after={feed(api)['next']}") == {"events": [], "next": feed(api)["next"]}


def test_an_unknown_event_type_or_cursor_is_refused(api: Api) -> None:
    bad_type = api.get(f"{BASE}/1000/events?types=invoiceCreated,orderShipped")
    bad_cursor = api.get(f"{BASE}/1000/events?after=-1")

    assert problem(bad_type, 422, "unknown-event-type")["errors"][0]["field"] == "types[1]"
    problem(bad_cursor, 422, "validation-failed")


def test_a_business_sees_only_its_own_events(api: Api, app: Flask) -> None:
    lifecycle(api)
    other = Api(api.client, new_key(app, ["2000"]), business="2000")

    assert feed(other)["events"] == []
    problem(other.get(f"{BASE}/1000/events"), 404, "not-found")


# --- subscriptions ---------------------------------------------------------------------------


def subscribe(api: Api, url: str, **extra: Any) -> Any:
    return api.post(f"{BASE}/{api.business}/webhooks", {"url": url, **extra})


def test_a_subscription_answers_its_secret_once(api: Api) -> None:
    created = subscribe(api, "https://erp.example.com/hooks", eventTypes=["invoiceCreated"])
    assert created.status_code == 200, created.get_data(as_text=True)
    webhook = created.get_json()

    listed = api.get(f"{BASE}/1000/webhooks").get_json()["webhooks"]
    one = api.get(f"{BASE}/1000/webhooks/{webhook['id']}").get_json()

    assert webhook["secret"].startswith("whsec_")
    assert (webhook["status"], webhook["eventTypes"]) == ("active", ["invoiceCreated"])
    assert [w["id"] for w in listed] == [webhook["id"]]
    assert "secret" not in listed[0] and "secret" not in one
    assert webhook["secret"] not in api.get(f"{BASE}/1000/webhooks").get_data(as_text=True)


def test_a_subscription_needs_https_outside_this_machine_and_known_types(api: Api) -> None:
    plain = subscribe(api, "http://erp.example.com/hooks")
    unknown = subscribe(api, "https://erp.example.com/hooks", eventTypes=["orderShipped"])
    not_url = subscribe(api, "erp.example.com")

    assert problem(plain, 422, "https-required")["errors"][0]["field"] == "url"
    assert problem(unknown, 422, "unknown-event-type")["errors"][0]["field"] == "eventTypes[0]"
    problem(not_url, 422, "invalid-url")
    assert subscribe(api, "http://127.0.0.1:9/hooks").status_code == 200
    assert subscribe(api, "http://[::1]:9/hooks").status_code == 200


def test_an_unsubscribed_webhook_is_gone_and_other_businesses_never_see_it(
    api: Api, app: Flask
) -> None:
    webhook = subscribe(api, "https://erp.example.com/hooks").get_json()
    path = f"{BASE}/1000/webhooks/{webhook['id']}"
    other = Api(api.client, new_key(app, ["2000"]), business="2000")

    problem(other.get(f"{BASE}/2000/webhooks/{webhook['id']}"), 404, "not-found")
    assert api.client.delete(path, headers=api.headers).get_json()["id"] == webhook["id"]
    problem(api.get(path), 404, "not-found")
    problem(api.client.delete(path, headers=api.headers), 404, "not-found")


def test_deliveries_and_replays_are_for_staff_keys(api: Api, app: Flask) -> None:
    merchant = Api(api.client, new_key(app, ["1000"], "merchant"))
    webhook = subscribe(merchant, "https://erp.example.com/hooks").get_json()
    path = f"{BASE}/1000/webhooks/{webhook['id']}"

    problem(merchant.get(f"{path}/deliveries"), 403, "forbidden")
    problem(merchant.post(f"{path}/replay", {"eventId": webhook["id"]}), 403, "forbidden")
    assert api.get(f"{path}/deliveries").get_json()["deliveries"] == []
    problem(api.post(f"{path}/replay", {"eventId": webhook["id"]}), 404, "not-found")
    problem(api.post(f"{path}/replay", {}), 422, "validation-failed")


# --- delivery --------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().up()
    yield running
    running.down()


@pytest.fixture
def relay(engine: Engine) -> Relay:
    return Relay(engine, FAST)


def relay_until(relay: Relay, done: Callable[[], bool], seconds: float = 15.0) -> None:
    """Run the relay (numbering, then delivering) until `done`, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the relay did not get there in time"
        relay.number()
        while relay.deliver_one():
            pass
        time.sleep(0.01)


def subscribed(api: Api, receiver: Receiver) -> Body:
    webhook: Body = subscribe(api, receiver.url).get_json()
    receiver.secret = webhook["secret"]
    return webhook


def test_every_event_arrives_signed_in_order_and_again_after_the_receiver_was_down(
    api: Api, receiver: Receiver, relay: Relay
) -> None:
    subscribed(api, receiver)
    lifecycle(api)
    relay_until(relay, lambda: len(receiver.ids()) == len(LIFECYCLE_TYPES))
    assert receiver.ids() == [e["id"] for e in all_events(api)]
    assert [e["type"] for e in receiver.events().values()] == LIFECYCLE_TYPES

    receiver.down()
    lifecycle(api)
    relay.number()
    for _ in range(3):
        relay.deliver_one()
        time.sleep(0.06)
    webhook = api.get(f"{BASE}/1000/webhooks").get_json()["webhooks"][0]
    deliveries = api.get(f"{BASE}/1000/webhooks/{webhook['id']}/deliveries").get_json()
    receiver.up()
    relay_until(relay, lambda: len(receiver.events()) == 2 * len(LIFECYCLE_TYPES))

    feed_ids = [e["id"] for e in all_events(api)]
    assert list(receiver.events()) == feed_ids  # each once, in feed order, by webhook-id
    assert receiver.refused == 0
    failing = deliveries["deliveries"][0]
    assert failing["status"] == "failing" and failing["attempts"] >= 2
    assert "ConnectionRefusedError" in failing["lastError"]
    assert webhook["failingSince"] is not None
    sample = relay.metrics.registry.get_sample_value
    failures = {"business": "1000", "endpoint": webhook["id"]}
    assert (sample("webhook_delivery_failures_total", failures) or 0) >= 2
    assert sample("webhook_deliveries_total") == 2 * len(LIFECYCLE_TYPES)
    relay.measure()
    assert sample("webhook_backlog_events", {"kind": "undelivered"}) == 0
    assert sample("webhook_backlog_events", {"kind": "unnumbered"}) == 0


def test_staff_replay_the_events_of_a_period_and_they_arrive_again(
    api: Api, receiver: Receiver, relay: Relay
) -> None:
    webhook = subscribed(api, receiver)
    lifecycle(api)
    relay_until(relay, lambda: len(receiver.ids()) == len(LIFECYCLE_TYPES))
    today = datetime.now(UTC).date().isoformat()
    path = f"{BASE}/1000/webhooks/{webhook['id']}"

    replayed = api.post(f"{path}/replay", {"from": today, "to": today})
    none = api.post(f"{path}/replay", {"from": "2020-01-01", "to": "2020-01-31"})
    relay_until(relay, lambda: len(receiver.ids()) == 2 * len(LIFECYCLE_TYPES))

    assert replayed.get_json()["replayed"] == len(LIFECYCLE_TYPES)
    assert none.get_json()["replayed"] == 0
    assert receiver.ids() == 2 * [e["id"] for e in all_events(api)]
    deliveries = api.get(f"{path}/deliveries").get_json()["deliveries"]
    assert {(d["status"], d["attempts"]) for d in deliveries} == {("delivered", 2)}


def test_an_endpoint_is_sent_only_the_types_it_asked_for(
    api: Api, receiver: Receiver, relay: Relay
) -> None:
    webhook = subscribe(api, receiver.url, eventTypes=["refundCreated"]).get_json()
    receiver.secret = webhook["secret"]
    lifecycle(api)

    relay_until(relay, lambda: len(receiver.ids()) == 2)
    relay_until(relay, lambda: relay.deliver_one() is False)

    assert [e["type"] for e in receiver.events().values()] == ["refundCreated"] * 2
    after = api.get(f"{BASE}/1000/webhooks/{webhook['id']}").get_json()
    assert after["deliveredThrough"] == feed(api)["next"]


def test_an_endpoint_failing_too_long_is_disabled_says_why_and_staff_replay_revives_it(
    api: Api, receiver: Receiver, engine: Engine
) -> None:
    relay = Relay(engine, Settings(timeout_s=2.0, base_delay_s=0.05, max_delay_s=0.05,
                                   give_up_after_s=0.3))  # fmt: skip
    webhook = subscribed(api, receiver)
    receiver.status = 500
    api.invoiced_order()
    path = f"{BASE}/1000/webhooks/{webhook['id']}"

    relay_until(relay, lambda: api.get(path).get_json()["status"] == "disabled")
    disabled = api.get(path).get_json()
    head = all_events(api)[0]["id"]
    with receiver._lock:
        receiver.received.clear()
    receiver.status = 204
    replayed = api.post(f"{path}/replay", {"eventId": head})
    relay_until(relay, lambda: len(receiver.events()) == 4)  # order, invoice, document, balance

    assert "every delivery failed since" in disabled["disabledReason"]
    assert "HTTP 500" in disabled["disabledReason"]
    assert replayed.get_json()["replayed"] == 1
    assert api.get(path).get_json()["status"] == "active"
    # The replayed event first, then the endpoint's events from where delivery stopped.
    assert receiver.ids()[0] == head
    assert list(receiver.events()) == [e["id"] for e in all_events(api)]
