"""Transactions on PostgreSQL (app/adapters/batch.py): statements sent together in psycopg's
pipeline mode, a write's rows held back and sent with the COMMIT, each write transaction
bounded by its own budget.

What a user would notice if that went wrong: a write lost or booked twice, a read in the same
transaction that misses its own write, statements of one request in different transactions,
a second writer of a busy order waiting without bound, or a connection handed to the next
request in the middle of a failed transaction or with answers still unread.
"""

from __future__ import annotations

import signal
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.db import LOCK_TIMEOUT_MS, make_engine, make_session_factory
from app.service.tax_correction import on_one_connection
from app.service.unit_of_work import DuplicateReference, UnitOfWork, run
from tests.domain_factories import ItemSpecFactory, OrderAggregateFactory


@pytest.fixture
def one_connection(database_url: str, engine: Engine) -> Iterator[Engine]:
    """An engine with a single pooled connection: every transaction reuses it. (Asking for
    `engine` empties the tables after the test.)"""
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def add(uow: UnitOfWork, reference: str) -> None:
    uow.orders.add(OrderAggregateFactory(order_reference=reference))


def orders(factory: sessionmaker[Session]) -> list[str]:
    """This module's orders (references HELD...), in order."""
    query = text("SELECT order_reference FROM orders WHERE order_reference LIKE 'HELD%' ORDER BY 1")
    with factory() as session:
        return list(session.scalars(query))


def backend(uow: UnitOfWork) -> Any:
    return uow.connection.execute(text("SELECT pg_backend_pid()")).scalar()


def test_a_write_that_fails_at_its_commit_leaves_the_connection_clean(
    one_connection: Engine,
) -> None:
    factory = make_session_factory(one_connection)

    def create(reference: str) -> None:
        def use_case(uow: UnitOfWork) -> None:
            add(uow, reference)
            uow.commit()

        run(factory, use_case)

    create("HELD1")
    with pytest.raises(DuplicateReference) as raised:
        create("HELD1")  # the key is taken: the INSERT fails in the COMMIT's round trip
    assert raised.value.code == "order-exists"
    create("HELD2")  # the same connection, its failed transaction ended
    assert orders(factory) == ["HELD1", "HELD2"]


def test_a_statement_after_a_held_write_sees_it(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with UnitOfWork(factory) as uow:
        add(uow, "HELD1")
        assert uow.orders.exists("1000", "HELD1"), "the held INSERT went first"
        order = uow.orders.lock("1000", "HELD1")
        assert order is not None and order.order_reference == "HELD1"
        uow.commit()
    assert orders(factory) == ["HELD1"]


def test_a_rollback_drops_the_held_writes_on_a_connection_kept_open(engine: Engine) -> None:
    factory, connection = on_one_connection(engine)
    try:
        with UnitOfWork(factory) as uow:
            add(uow, "HELD1")
            uow.rollback()
        with UnitOfWork(factory) as uow:
            add(uow, "HELD2")
            uow.commit()
        with UnitOfWork(factory) as uow:
            add(uow, "HELD3")  # never committed: dropped when the unit of work ends
    finally:
        connection.close()
    assert orders(make_session_factory(engine)) == ["HELD2"]


@pytest.mark.parametrize("positions", [1, 16, 17, 1001], ids=lambda n: f"{n} positions")
def test_rows_of_any_number_are_written_as_given(engine: Engine, positions: int) -> None:
    factory = make_session_factory(engine)
    items = [ItemSpecFactory(item_ref=n, unit_gross=100 + n) for n in range(1, positions + 1)]
    with UnitOfWork(factory) as uow:
        uow.orders.add(OrderAggregateFactory(order_reference="HELD1", items=items))
        uow.commit()
    with UnitOfWork(factory) as uow:
        order = uow.orders.get("1000", "HELD1")
    assert order is not None
    assert [(p.item_ref, p.unit_gross) for p in order.positions] == [
        (n, 100 + n) for n in range(1, positions + 1)
    ]


class Interrupted(Exception):
    """Raised while a pipeline's answers are awaited (a worker's timeout, a signal)."""


@pytest.mark.parametrize("kept_open", [False, True], ids=["pooled", "kept open"])
def test_a_pipeline_interrupted_while_read_leaves_no_connection_half_read(
    one_connection: Engine, engine: Engine, kept_open: bool
) -> None:
    """A connection whose answers were not all read is closed and replaced, never handed to
    the next transaction with those answers still pending: a pooled one, or one a batch of
    tax corrections keeps open."""
    factory, connection = (
        on_one_connection(one_connection)
        if kept_open
        else (make_session_factory(one_connection), None)
    )
    with UnitOfWork(factory) as uow:
        add(uow, "HELD1")
        uow.commit()
        interrupted = backend(uow)

    def interrupt(*_: object) -> None:
        raise Interrupted

    with engine.connect() as other:  # holds the order's row lock: the lock's answer waits
        other.execute(text("SELECT 1 FROM orders WHERE order_reference = 'HELD1' FOR UPDATE"))
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        try:
            with pytest.raises((Interrupted, DBAPIError)), UnitOfWork(factory) as uow:
                uow.orders.lock("1000", "HELD1")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        other.rollback()

    with UnitOfWork(factory) as uow:
        assert backend(uow) != interrupted, "the interrupted connection was not reused"
        order = uow.orders.lock("1000", "HELD1")
        assert order is not None and order.order_reference == "HELD1"
        add(uow, "HELD2")
        uow.commit()
    if connection is not None:
        connection.close()
    assert orders(make_session_factory(engine)) == ["HELD1", "HELD2"]


def test_a_unit_of_work_is_one_transaction(engine: Engine) -> None:
    factory = make_session_factory(engine)
    setting = text("SELECT now(), current_setting('transaction_isolation')")
    with UnitOfWork(factory) as uow:
        first = uow.connection.execute(setting).one()
        time.sleep(0.01)
        assert uow.orders.lock("1000", "NOSUCH") is None  # a pipeline in between
        second = uow.connection.execute(setting).one()
    assert first == second, "now() is the transaction's start: the same one throughout"
    assert first[1] == "read committed"


def test_a_read_is_one_read_only_snapshot(one_connection: Engine) -> None:
    factory = make_session_factory(one_connection)
    setting = text(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
    )
    with UnitOfWork(factory, snapshot=True) as uow:
        assert uow.orders.get("1000", "NOSUCH") is None
        assert uow.connection.execute(setting).one() == ("repeatable read", "on")
    with UnitOfWork(factory) as uow:  # the same pooled connection reads and writes again
        assert uow.connection.execute(setting).one() == ("read committed", "off")


def test_a_write_transaction_sets_its_own_budget_and_only_for_itself(
    one_connection: Engine,
) -> None:
    """Behind PgBouncer the connection's options are ignored: the budget that bounds a second
    writer of a busy order is set by the write transaction itself, before its order lock."""
    factory = make_session_factory(one_connection)
    budget = text("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
    with one_connection.connect() as connection:  # a session whose own settings differ
        connection.execute(text("SET statement_timeout = '7s'; SET lock_timeout = '7s'"))
        connection.commit()
    expected = (f"{LOCK_TIMEOUT_MS // 1000}s",) * 2
    with UnitOfWork(factory) as uow:
        uow.orders.lock("1000", "NOSUCH")
        assert uow.connection.execute(budget).one() == expected
    with UnitOfWork(factory, snapshot=True) as uow:
        uow.orders.get("1000", "NOSUCH")
        assert uow.connection.execute(budget).one() == ("7s", "7s"), "a read has none"


def test_a_connection_kept_open_holds_no_more_memory_after_thousands_of_units_of_work(
    engine: Engine,
) -> None:
    """A batch runs each invoice's transaction on one connection (on_one_connection): what a
    unit of work sets on it is put back at its end, and nothing stays behind per use."""
    factory, connection = on_one_connection(engine)

    def units_of_work(count: int) -> None:
        for _ in range(count):
            with UnitOfWork(factory) as uow:
                uow.orders.lock("1000", "NOSUCH")

    try:
        units_of_work(200)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        units_of_work(3000)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        connection.close()
    assert grown < 256 * 1024, f"{grown} bytes more after 3,000 units of work"


def test_a_connection_kept_open_is_transactional_again_after_a_unit_of_work(
    engine: Engine,
) -> None:
    factory, connection = on_one_connection(engine)
    try:
        with UnitOfWork(factory) as uow:
            uow.orders.lock("1000", "NOSUCH")
            uow.commit()
        connection.execute(text("CREATE TEMPORARY TABLE held_probe (n int)"))
        connection.rollback()  # undoes the statement: it ran in a transaction, not autocommit
        assert connection.execute(text("SELECT to_regclass('pg_temp.held_probe')")).scalar() is None
        connection.rollback()
    finally:
        connection.close()
