"""A pooled connection the server has closed is replaced, never reported to the client.

The pool does not ping a connection before lending it (a round trip per request); a dead one
fails its first statement instead, and the use case runs again on a fresh connection. Here
the server closes the pool's connections between requests, as a restart or an idle timeout
would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.db import make_engine, make_session_factory
from app.adapters.keys import create_key
from app.factory import create_app
from app.service.unit_of_work import UnitOfWork, run
from tests import factories
from tests.domain_factories import OrderAggregateFactory

APPLICATION = "closed-by-server"


@pytest.fixture
def own_engine(database_url: str) -> Iterator[Engine]:
    """An engine of its own, named so that only its connections are closed."""
    engine = make_engine(f"{database_url}?application_name={APPLICATION}")
    yield engine
    engine.dispose()


def close_pooled_connections(engine: Engine) -> None:
    """The server ends every connection of own_engine, waiting (up to 5 s) until each is gone."""
    with engine.connect() as connection:
        ended = (
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": APPLICATION},
            )
            .scalars()
            .all()
        )
    assert ended and all(ended), "own_engine had no connection, or one outlived the timeout"


def test_a_read_and_a_write_run_again_on_a_fresh_connection(
    engine: Engine, own_engine: Engine
) -> None:
    factory: sessionmaker[Session] = make_session_factory(own_engine)
    with UnitOfWork(factory) as uow:
        uow.orders.add(OrderAggregateFactory(order_reference="ORD1"))
        uow.commit()

    close_pooled_connections(engine)
    order = run(factory, lambda uow: uow.orders.get("1000", "ORD1"), snapshot=True)
    assert order is not None and order.version == 1

    def cancel(uow: UnitOfWork) -> int:
        order = uow.orders.lock("1000", "ORD1")
        assert order is not None
        uow.orders.store(order, order.cancel("C1", None, [2], date(2024, 6, 15), None))
        uow.commit()
        return order.version

    close_pooled_connections(engine)
    assert run(factory, cancel) == 2


def test_requests_are_answered_after_the_server_closed_the_pools_connections(
    engine: Engine, own_engine: Engine, database_url: str
) -> None:
    app = create_app({"DATABASE_URL": database_url, "ENGINE": own_engine, "TESTING": True})
    with app.extensions["accounting"].session_factory() as session, session.begin():
        key = create_key(session, ["1000"], "merchant", "test")
    client = app.test_client()
    headers = {"X-Subscription-Key": key}
    orders = "/accounting/v1/businesses/1000/customers/TFI2021072801/orders"
    body = factories.OrderFactory(orderReference="ORD1")
    assert client.post(orders, json=body, headers=headers).status_code == 200

    close_pooled_connections(engine)
    read = client.get(f"{orders}/ORD1", headers=headers)
    assert read.status_code == 200, read.get_json()

    close_pooled_connections(engine)
    paid = client.post(
        f"{orders}/ORD1/payments",
        json={"authorizedAmount": 5, "paymentProvider": "VISA"},
        headers=headers,
    )
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["order"]["totals"]["paid"] == 5


def test_a_session_whose_prepared_statements_were_dropped_prepares_them_again(
    engine: Engine, own_engine: Engine
) -> None:
    """psycopg prepares the hot statements on each connection (app/adapters/batch.py) and
    notices a DEALLOCATE ALL or DISCARD ALL run on it: the next reads and writes prepare
    them again instead of failing."""
    factory: sessionmaker[Session] = make_session_factory(own_engine)
    with UnitOfWork(factory) as uow:
        uow.orders.add(OrderAggregateFactory(order_reference="ORD1"))
        uow.commit()
    prepared = text("SELECT count(*) FROM pg_prepared_statements")

    def read(uow: UnitOfWork) -> int:
        order = uow.orders.get("1000", "ORD1")
        assert order is not None and order.order_reference == "ORD1"
        return int(uow.connection.execute(prepared).scalar() or 0)

    assert run(factory, read, snapshot=True) > 0
    for drop in ("DEALLOCATE ALL", "DISCARD ALL"):
        with own_engine.connect() as connection:  # the pool's one idle connection
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql(drop)
            assert connection.execute(prepared).scalar() == 0
        assert run(factory, read, snapshot=True) > 0

    def cancel(uow: UnitOfWork) -> None:
        order = uow.orders.lock("1000", "ORD1")
        assert order is not None
        uow.orders.store(order, order.cancel("C1", None, [2], date(2024, 6, 15), None))
        uow.commit()

    run(factory, cancel)
    with UnitOfWork(factory) as uow:
        order = uow.orders.get("1000", "ORD1")
        assert order is not None and order.version == 2
