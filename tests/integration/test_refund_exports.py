"""Two credit-transfer exports at the same moment never put one refund in both files."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from sqlalchemy import Engine, func, select

from app.adapters.schema import refund_export_items, refunds
from app.domain.bank_account import Transfer
from app.factory import create_app
from app.service.refunds import Export, RefundPayouts
from tests import factories
from tests.e2e.conftest import Api, new_key

ORDERS = 12
IBAN = "DE02120300000000202051"


def slow_writer(transfers: list[Transfer], export_id: str) -> tuple[str, bytes]:
    """A file writer that takes its time, so the other export runs while this one holds its
    orders."""
    time.sleep(0.3)
    ids = ",".join(t.refund_id for t in transfers)
    return f"MSG{export_id[:8]}", ids.encode()


def test_concurrent_exports_never_share_a_refund(engine: Engine, database_url: str) -> None:
    app: Flask = create_app({"DATABASE_URL": database_url, "ENGINE": engine, "TESTING": True})
    api = Api(app.test_client(), new_key(app, ["1000"]))
    payouts = RefundPayouts(app.extensions["accounting"].session_factory)
    everything: set[str] = set()
    for _ in range(3):
        due = created_refunds(api, ORDERS)
        everything |= due
        start = threading.Barrier(2)

        def one_export(barrier: threading.Barrier) -> Export:
            barrier.wait(timeout=10)
            return payouts.export("1000", "pain.001", slow_writer)

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(one_export, start) for _ in range(2)]
            first, second = (f.result(timeout=30) for f in futures)
        in_first = {t.refund_id for t in first.transfers}
        in_second = {t.refund_id for t in second.transfers}
        assert not in_first & in_second
        assert in_first | in_second == due
    with engine.connect() as connection:
        items = connection.execute(
            select(refund_export_items.c.refund_id, func.count()).group_by(
                refund_export_items.c.refund_id
            )
        ).all()
        statuses = connection.execute(select(refunds.c.status).distinct()).scalars().all()
    assert {refund_id for refund_id, _ in items} == everything
    assert {count for _, count in items} == {1}
    assert statuses == ["in_payout"]


def created_refunds(api: Api, count: int) -> set[str]:
    """`count` new orders, each owing a bank refund; returns the refunds' ids."""
    found = set()
    for _ in range(count):
        order = factories.OrderFactory()
        ref = order["orderReference"]
        assert api.create_order(order).status_code == 200
        assert api.pay(ref).status_code == 200
        response = api.cancel(ref, [2], bankDetails={"iban": IBAN, "accountOwner": "Max"})
        assert response.status_code == 200, response.get_json()
        found.add(response.get_json()["refund"]["id"])
    return found
