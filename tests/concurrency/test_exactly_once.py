"""Lost updates and retries (SPEC section 7): If-Match, Idempotency-Key, a worker killed mid-way.

A write happens once or not at all, whatever the clients race, repeat or lose on the way.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from app import jsoncodec
from tests.concurrency import bodies
from tests.concurrency.conftest import (
    WORKERS,
    Client,
    Reply,
    Server,
    no_server_errors,
    race,
    verify_clean,
)
from tests.concurrency.workload import Workload, hot_orders, summary

Body = dict[str, Any]

IN_FLIGHT_ATTEMPTS = 250  # a duplicate waits at most ~250 x 20 ms for the first to finish
KILLS = 3
DUPLICATE_ROUNDS = 5  # a race lost only now and then is still lost: run it a few times
MOST_KILLS = 7


def invoiced_order(client: Client) -> tuple[Body, Body]:
    """Position 1 at 11.90 and position 2 at 23.80, both on one invoice."""
    order = bodies.new_order([(1, "11.90", "19", "1"), (2, "23.80", "19", "1")])
    assert client.create_order(order).status == 200
    invoice = bodies.invoice(f"INV-{order['orderReference']}", [1, 2])
    reply = client.post(f"{client.order_path(order['orderReference'])}/invoices", invoice)
    assert reply.status == 200, reply.raw
    return order, invoice


# --- If-Match -----------------------------------------------------------------------------


class TestIfMatch:
    def test_twenty_corrections_of_one_version_apply_exactly_once(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order, invoice = invoiced_order(client)
        ref = order["orderReference"]
        etag = client.get(client.order_path(ref)).headers["ETag"]
        assert etag == '"2"'
        prices = [Decimal("11.90") - Decimal(n) / 10 for n in range(1, 21)]
        puts = [
            bodies.correction(order, invoice, bodies.reprice_items(order, {1: price}))
            for price in prices
        ]
        path = f"{client.order_path(ref)}/invoices/{invoice['invoiceReference']}"

        replies = race(server, staff_key, 20, lambda c, i: c.put(path, puts[i], {"If-Match": etag}))

        no_server_errors(server, replies)
        assert sorted(r.status for r in replies) == [200] + [412] * 19
        assert {r.code for r in replies if r.status == 412} == {"precondition-failed"}
        (winner,) = [i for i, r in enumerate(replies) if r.status == 200]
        assert replies[winner].headers["ETag"] == '"3"'
        after = client.order(ref)
        assert after["version"] == 3
        assert after["positions"][0]["grossUnitPrice"] == prices[winner]
        document = client.get(path).json
        assert [v["status"] for v in document["versions"]] == ["nullified", "issued"]
        assert len(document["creditNotes"]) == 1
        verify_clean(engine)


# --- Idempotency-Key ------------------------------------------------------------------------


def until_answered(c: Client, path: str, body: Body, key: str) -> Reply:
    """Send; while the first request with this key still runs (409), wait and send again."""
    reply = c.put(path, body, {"Idempotency-Key": key})
    for _ in range(IN_FLIGHT_ATTEMPTS):
        if reply.code != "request-in-flight":
            return reply
        time.sleep(0.02)
        reply = c.put(path, body, {"Idempotency-Key": key})
    return reply


class TestIdempotencyKey:
    def test_a_refunding_correction_sent_120_times_refunds_exactly_once(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order, invoice = invoiced_order(client)
        ref = order["orderReference"]
        paid = client.post(f"{client.order_path(ref)}/payments", {"paymentProvider": "VISA"})
        assert paid.status == 200, paid.raw
        body = bodies.correction(order, invoice, bodies.reprice_items(order, {2: Decimal("20.00")}))
        path = f"{client.order_path(ref)}/invoices/{invoice['invoiceReference']}"
        key = f"refund-once-{ref}"

        concurrent = race(server, staff_key, 20, lambda c, i: until_answered(c, path, body, key))
        sequential = [until_answered(client, path, body, key) for _ in range(100)]

        replies = concurrent + sequential
        no_server_errors(server, replies)
        assert [r.status for r in replies] == [200] * 120, {r.raw[:200] for r in replies}
        assert len({r.raw for r in replies}) == 1, "a replay differs from the first answer"
        assert sum(not r.replayed for r in replies) == 1
        assert all(r.replayed for r in sequential)
        assert {r.headers.get("ETag") for r in replies} == {'"4"'}
        answer = jsoncodec.loads(replies[0].raw)
        assert (answer["changed"], answer["version"]) == (True, 2)
        assert answer["refund"]["amount"] == Decimal("3.80")
        (refund,) = client.refunds(ref)
        assert (refund["id"], refund["amount"]) == (answer["refund"]["id"], Decimal("3.80"))
        totals = client.order(ref)["totals"]
        assert (totals["paid"], totals["refunded"], totals["balance"]) == (
            Decimal("35.70"),
            Decimal("3.80"),
            0,
        )
        assert len(client.get(path).json["versions"]) == 2
        verify_clean(engine)

    def test_the_same_key_with_another_body_is_refused_while_the_first_answer_stands(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order, invoice = invoiced_order(client)
        ref = order["orderReference"]
        path = f"{client.order_path(ref)}/invoices/{invoice['invoiceReference']}"
        lowered = [
            bodies.correction(order, invoice, bodies.reprice_items(order, {1: Decimal(price)}))
            for price in ("11.00", "10.00")
        ]
        key = f"one-key-{ref}"

        replies = race(
            server, staff_key, 20, lambda c, i: until_answered(c, path, lowered[i % 2], key)
        )

        no_server_errors(server, replies)
        winners = {
            lowered.index(b) for b, r in zip(lowered * 10, replies, strict=True) if r.status == 200
        }
        assert len(winners) == 1
        (won,) = winners
        for n, r in enumerate(replies):
            if n % 2 == won:
                assert r.status == 200
            else:
                assert (r.status, r.code) == (422, "idempotency-key-reused")
        price = client.order(ref)["positions"][0]["grossUnitPrice"]
        assert price == Decimal(("11.00", "10.00")[won])
        assert len(client.get(path).json["versions"]) == 2
        verify_clean(engine)


# --- the same document or the same money at the same moment -------------------------------


def creating(order: Body) -> Callable[[Client, int], Reply]:
    return lambda c, i: c.create_order(order)


def invoicing(orders: list[Body], invoice: Body) -> Callable[[Client, int], Reply]:
    """The i-th client sends the invoice for the i-th order."""
    return lambda c, i: c.post(f"{c.order_path(orders[i]['orderReference'])}/invoices", invoice)


class TestSameMoment:
    def test_twenty_payments_of_the_whole_balance_book_it_once(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order, _ = invoiced_order(client)
        ref = order["orderReference"]

        replies = race(
            server,
            staff_key,
            20,
            lambda c, i: c.post(f"{c.order_path(ref)}/payments", {"paymentProvider": "VISA"}),
        )

        no_server_errors(server, replies)
        assert sorted(r.status for r in replies) == [200] + [409] * 19
        assert {r.code for r in replies if r.status == 409} == {"nothing-to-pay"}
        totals = client.order(ref)["totals"]
        assert (totals["paid"], totals["balance"], totals["refunded"]) == (Decimal("35.70"), 0, 0)
        verify_clean(engine)

    def test_twenty_partial_payments_at_once_are_all_booked(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order, _ = invoiced_order(client)
        ref = order["orderReference"]
        amounts = [Decimal("1.00") + Decimal(n) / 100 for n in range(20)]  # 1.00 ... 1.19

        replies = race(
            server,
            staff_key,
            20,
            lambda c, i: c.post(
                f"{c.order_path(ref)}/payments",
                {"paymentProvider": "VISA", "authorizedAmount": amounts[i]},
            ),
        )

        no_server_errors(server, replies)
        assert [r.status for r in replies] == [200] * 20
        assert len({r.json["reference"] for r in replies}) == 20
        totals = client.order(ref)["totals"]
        assert totals["paid"] == sum(amounts) == Decimal("21.90")
        assert totals["balance"] == Decimal("35.70") - Decimal("21.90")
        verify_clean(engine)

    def test_twenty_creations_of_one_order_create_it_once(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        for _ in range(DUPLICATE_ROUNDS):
            order = bodies.new_order([(1, "11.90", "19", "1")])

            replies = race(server, staff_key, 20, creating(order))

            no_server_errors(server, replies)
            assert sorted(r.status for r in replies) == [200] + [409] * 19
            assert {r.code for r in replies if r.status == 409} == {"order-exists"}
            assert client.order(order["orderReference"])["version"] == 1
        verify_clean(engine)

    def test_one_invoice_reference_sent_for_twenty_orders_at_once_is_taken_once(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        for _ in range(DUPLICATE_ROUNDS):
            orders = [bodies.new_order([(1, "11.90", "19", "1")]) for _ in range(20)]
            for order in orders:
                assert client.create_order(order).status == 200
            invoice = bodies.invoice(f"INV-{orders[0]['orderReference']}", [1])

            replies = race(server, staff_key, 20, invoicing(orders, invoice))

            no_server_errors(server, replies)
            assert sorted(r.status for r in replies) == [200] + [409] * 19
            assert {r.code for r in replies if r.status == 409} == {"invoice-exists"}
            states = [client.order(o["orderReference"])["positions"][0]["state"] for o in orders]
            assert sorted(states) == ["invoiced"] + ["open"] * 19
        verify_clean(engine)


# --- a worker killed in the middle of the traffic -----------------------------------------


def kill_workers(server: Server, workload: Workload, killed: list[int], seed: int) -> None:
    """SIGKILL a worker each time another share of the budget is spent, and wait for its heir.

    At least KILLS kills, and more (up to MOST_KILLS) until one of them cut a request short:
    a worker can die between two requests too.
    """
    rng = random.Random(seed)
    for n in range(1, MOST_KILLS + 1):
        if n > KILLS and interrupted(workload):
            return
        while workload.used < n * workload.max_requests // (MOST_KILLS + 1):
            if time.monotonic() > workload.deadline:
                return
            time.sleep(0.02)
        victim = rng.choice(server.workers())
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = server.workers()
            if len(workers) == WORKERS and victim not in workers:
                break
            time.sleep(0.05)


def interrupted(workload: Workload) -> int:
    """How many requests died with their worker (and were sent again)."""
    return sum(kind == "connection" for kind, _ in workload.transient)


class TestWorkerKilledMidWorkload:
    def test_every_retried_write_happens_exactly_once(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        orders = hot_orders(3)
        for order in orders:
            assert client.create_order(order).status == 200
        workload = Workload(server, staff_key, orders, seed=20240607, idempotent=True)
        killed: list[int] = []

        workload.run(16, during=lambda: kill_workers(server, workload, killed, seed=7))

        print(summary(workload), f"killed {killed}")
        assert KILLS <= len(killed) <= MOST_KILLS
        assert interrupted(workload) > 0
        assert len(server.workers()) == WORKERS
        workload.check_answers()
        workload.check_nothing_lost_or_doubled(engine, client)
        verify_clean(engine)
