"""Every write kind at once on a few hot orders: no 5xx, every invariant holds afterwards."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.concurrency.conftest import Client, Server, verify_clean
from tests.concurrency.workload import KINDS, Workload, hot_orders, summary


class TestMixedWorkload:
    def test_sixteen_clients_on_three_hot_orders_leave_every_invariant_intact(
        self, server: Server, staff_key: str, client: Client, engine: Engine
    ) -> None:
        orders = hot_orders(3)
        for order in orders:
            assert client.create_order(order).status == 200
        workload = Workload(server, staff_key, orders, seed=20240601)

        workload.run(16)

        print(summary(workload))
        workload.check_answers()
        statuses = workload.statuses()
        assert all(statuses[kind][200] > 0 for kind in KINDS), statuses
        assert any(w.dry_run and w.reply.status == 200 for w in workload.writes)
        workload.check_nothing_lost_or_doubled(engine, client)
        verify_clean(engine)
