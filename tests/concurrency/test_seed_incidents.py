"""The peers' incidents (seeds 000 and 002) replayed against gunicorn: impossible here.

Seed 002: two partial invoices for one order sent at once; both were created, but only one
position read invoiced. Seed 000: an invoice accepted while a value-reducing change of the same
order was still running; the invoices ended above the order's final total.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Engine

from tests.concurrency import bodies
from tests.concurrency.conftest import (
    Client,
    Reply,
    Server,
    no_server_errors,
    race,
    verify_clean,
)

Body = dict[str, Any]

SETTLE_ATTEMPTS = 150  # a correction waits at most ~150 x 10 ms for the order to settle
ROUNDS = 15
CORRECTIONS = 60


def created(client: Client, order: Body) -> str:
    reply = client.create_order(order)
    assert reply.status == 200, reply.raw
    ref: str = order["orderReference"]
    return ref


# --- seed 002: partial invoices at the same moment ----------------------------------------


class TestPartialInvoicesAtTheSameMoment:
    def test_twenty_invoices_for_twenty_positions_all_succeed_and_every_position_reads_invoiced(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order = bodies.new_order([(n, f"{n}.90", "19", "1") for n in range(1, 21)])
        ref = created(client, order)
        invoices = [bodies.invoice(f"INV-{ref}-{n}", [n]) for n in range(1, 21)]

        replies = race(
            server,
            staff_key,
            20,
            lambda c, i: c.post(f"{c.order_path(ref)}/invoices", invoices[i]),
        )

        no_server_errors(server, replies)
        assert [r.status for r in replies] == [200] * 20, [r.raw[:200] for r in replies]
        after = client.order(ref)
        assert [
            (p["orderItemReference"], p["state"], p["invoiceReference"]) for p in after["positions"]
        ] == [(n, "invoiced", f"INV-{ref}-{n}") for n in range(1, 21)]
        gross = sum(Decimal(f"{n}.90") for n in range(1, 21))
        assert after["totals"]["invoiced"] == after["totals"]["gross"] == gross
        assert after["version"] == 1 + 20
        verify_clean(engine)

    def test_twenty_invoices_naming_one_position_create_exactly_one_invoice(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        ref = created(client, bodies.new_order([(1, "11.90", "19", "1"), (2, "23.80", "19", "1")]))
        invoices = [bodies.invoice(f"INV-{ref}-{n}", [1]) for n in range(20)]

        replies = race(
            server,
            staff_key,
            20,
            lambda c, i: c.post(f"{c.order_path(ref)}/invoices", invoices[i]),
        )

        no_server_errors(server, replies)
        assert sorted(r.status for r in replies) == [200] + [409] * 19
        assert {r.code for r in replies if r.status == 409} == {"position-not-open"}
        assert all(
            r.headers["Content-Type"] == "application/problem+json"
            for r in replies
            if r.status == 409
        )
        (winner,) = [
            invoices[i]["invoiceReference"] for i, r in enumerate(replies) if r.status == 200
        ]
        after = client.order(ref)
        assert [(p["state"], p["invoiceReference"]) for p in after["positions"]] == [
            ("invoiced", winner),
            ("open", None),
        ]
        assert after["totals"]["invoiced"] == Decimal("11.90")
        for n in range(20):
            reference = invoices[n]["invoiceReference"]
            status = client.get(f"{client.order_path(ref)}/invoices/{reference}").status
            assert status == (200 if reference == winner else 404)
        verify_clean(engine)


# --- seed 000: invoices, cancellations and corrections at the same moment ----------------


@dataclass(frozen=True)
class Reading:
    """What one GET of an order said: its totals, and the positions that read invoiced."""

    ref: str
    status: int
    invoiced: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    on_invoices: Decimal = Decimal(0)  # gross of the positions reading invoiced

    @classmethod
    def of(cls, ref: str, reply: Reply) -> Reading:
        if reply.status != 200:
            return cls(ref, reply.status)
        body = reply.json
        on_invoices = sum(
            (
                (Decimal(str(p["grossUnitPrice"])) * Decimal(str(p["quantity"]))).quantize(
                    bodies.CENT, ROUND_HALF_UP
                )
                for p in body["positions"]
                if p["state"] == "invoiced"
            ),
            Decimal(0),
        )
        totals = body["totals"]
        return cls(ref, 200, totals["invoiced"], totals["gross"], on_invoices)


@dataclass
class Readers:
    """Threads polling one order (whichever `current` names) the whole time, keeping every
    reading; bounded in time and count."""

    server: Server
    key: str
    threads: int = 2
    current: str | None = None
    readings: list[Reading] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    seconds: float = 120
    most: int = 20_000

    def __enter__(self) -> Readers:
        self.polling = [
            threading.Thread(target=self.poll, daemon=True) for _ in range(self.threads)
        ]
        for thread in self.polling:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.polling:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.polling)

    def poll(self) -> None:
        client = Client(self.server, self.key)
        deadline = time.monotonic() + self.seconds
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                ref = self.current
                if ref is None or len(self.readings) >= self.most:
                    time.sleep(0.005)
                    continue
                self.readings.append(Reading.of(ref, client.get(client.order_path(ref))))
        finally:
            client.close()

    def check(self) -> None:
        """Every reading 200, one snapshot, and never invoices above the order total."""
        assert [r for r in self.readings if r.status != 200] == []
        torn = [r for r in self.readings if r.invoiced != r.on_invoices]
        assert torn == [], f"{len(torn)} of {len(self.readings)} readings torn: {torn[:3]}"
        above = [r for r in self.readings if r.invoiced > r.gross]
        assert above == [], f"invoices above the order total: {above[:3]}"


def correct_when_settled(c: Client, path: str, body: Body) -> Reply:
    """A client that corrects an invoice as soon as the order is settled (bounded)."""
    reply = c.put(path, body)
    for _ in range(SETTLE_ATTEMPTS):
        if not (reply.status == 409 and reply.code == "order-not-settled"):
            return reply
        time.sleep(0.01)
        reply = c.put(path, body)
    return reply


def names(body: Body) -> set[int]:
    return {i["orderItemReference"] for i in body.get("items", [])}


class TestInvoiceCancellationAndCorrectionAtTheSameMoment:
    def test_live_invoices_never_exceed_the_order_total(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        every_reply: list[Reply] = []
        corrections: Counter[int] = Counter()
        with Readers(server, staff_key) as readers:
            for _ in range(ROUNDS):
                replies = self.one_round(server, staff_key, client, readers)
                every_reply.extend(replies)
                corrections[sum(r.status == 200 for r in replies[-2:])] += 1

        no_server_errors(server, every_reply)
        print(
            f"seed 000: {len(readers.readings)} readings; successful corrections per round "
            f"{dict(corrections)}"
        )
        assert len({r.ref for r in readers.readings}) == ROUNDS
        readers.check()
        verify_clean(engine)

    def one_round(self, server: Server, key: str, client: Client, readers: Readers) -> list[Reply]:
        """Position 1 (100.00) is invoiced and paid; 2 (50.00) and 3 (30.00) are open. At once:
        two invoices and three cancellations fight over 2 and 3, while two corrections lower
        the price of 1 as soon as the order is settled."""
        order = bodies.new_order(
            [(1, "100.00", "19", "1"), (2, "50.00", "19", "1"), (3, "30.00", "19", "1")]
        )
        ref = created(client, order)
        path = client.order_path(ref)
        invoice_a = bodies.invoice(f"A-{ref}", [1])
        assert client.post(f"{path}/invoices", invoice_a).status == 200
        paid = client.post(
            f"{path}/payments", {"paymentProvider": "VISA", "authorizedAmount": Decimal("100.00")}
        )
        assert paid.status == 200, paid.raw
        readers.current = ref

        contenders: list[tuple[str, Body]] = [
            ("invoices", bodies.invoice(f"B-{ref}", [2, 3])),
            ("invoices", bodies.invoice(f"C-{ref}", [2])),
            ("cancellations", bodies.cancellation([2])),
            ("cancellations", bodies.cancellation([3])),
            ("cancellations", bodies.cancellation([2, 3])),
        ]
        lowered = [
            bodies.correction(order, invoice_a, bodies.reprice_items(order, {1: Decimal(price)}))
            for price in ("90.00", "80.00")
        ]

        def act(c: Client, i: int) -> Reply:
            if i < len(contenders):
                kind, body = contenders[i]
                return c.post(f"{path}/{kind}", body)
            return correct_when_settled(
                c, f"{path}/invoices/{invoice_a['invoiceReference']}", lowered[i - len(contenders)]
            )

        replies = race(server, key, len(contenders) + len(lowered), act)
        no_server_errors(server, replies)

        fights, fixes = replies[: len(contenders)], replies[len(contenders) :]
        assert {(r.status, r.code) for r in fights} <= {(200, None), (409, "position-not-open")}
        for position in (2, 3):
            winners = [
                kind
                for (kind, body), r in zip(contenders, fights, strict=True)
                if r.status == 200 and position in names(body)
            ]
            assert len(winners) == 1, (position, [r.raw[:200] for r in fights])
        assert {(r.status, r.code) for r in fixes} <= {(200, None), (422, "gross-price-increase")}
        assert any(r.status == 200 for r in fixes)

        after = client.order(ref)
        totals = after["totals"]
        assert after["positions"][0]["state"] == "invoiced"
        assert "open" not in {p["state"] for p in after["positions"]}
        assert after["positions"][0]["grossUnitPrice"] == Decimal("80.00")
        assert totals["invoiced"] == totals["gross"]
        assert totals["refunded"] == max(Decimal(0), Decimal("100.00") - totals["gross"])
        assert totals["balance"] == totals["gross"] - totals["paid"] + totals["refunded"]
        return replies


class TestReadsDuringWrites:
    def test_a_read_sees_an_order_before_or_after_a_correction_never_half_of_it(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        order = bodies.new_order([(1, "100.00", "19", "1"), (2, "50.00", "19", "1")])
        ref = created(client, order)
        path = client.order_path(ref)
        invoice = bodies.invoice(f"A-{ref}", [1, 2])
        assert client.post(f"{path}/invoices", invoice).status == 200
        prices = [Decimal("100.00") - Decimal(n) / 2 for n in range(1, CORRECTIONS + 1)]

        with Readers(server, staff_key, threads=3, current=ref) as readers:
            replies = [
                client.put(
                    f"{path}/invoices/{invoice['invoiceReference']}",
                    bodies.correction(order, invoice, bodies.reprice_items(order, {1: price})),
                )
                for price in prices
            ]

        assert [r.status for r in replies] == [200] * CORRECTIONS
        print(f"{len(readers.readings)} readings during {CORRECTIONS} corrections")
        assert len(readers.readings) >= CORRECTIONS
        readers.check()
        verify_clean(engine)
