"""Transactions on PostgreSQL travel with their statements (app/adapters/batch.py): the
BEGIN in the first message, a write's statements held back and sent with the COMMIT.

What a user would notice if that went wrong: a write lost or booked twice, a read in the same
transaction that misses its own write, statements of one request in different transactions,
or a connection handed to the next request in the middle of a failed transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import batch, keys
from app.adapters.db import make_engine, make_session_factory
from app.adapters.keys import create_key, revoke_key
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
        create("HELD1")  # the key is taken: the INSERT fails in the COMMIT's message
    assert raised.value.code == "order-exists"
    create("HELD2")  # the same connection, its failed transaction ended
    assert orders(factory) == ["HELD1", "HELD2"]


def test_a_statement_after_a_held_write_sees_it(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with UnitOfWork(factory) as uow:
        add(uow, "HELD1")
        assert uow.orders.exists("1000", "HELD1"), "the held INSERT went first"
        order = uow.orders.lock("1000", "HELD1")  # a batch of its own carries no held write
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


@pytest.mark.parametrize("positions", [1, 16, 17, 40, 1001], ids=lambda n: f"{n} positions")
def test_rows_of_any_number_are_written_as_given(engine: Engine, positions: int) -> None:
    """Up to a few rows a table, the INSERT is a prepared statement for that many rows;
    beyond, a plain one. Either way every row reads back as it was written."""
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
    """Raised while a batch's answers are read (a worker's timeout, a signal)."""


def test_a_batch_interrupted_while_read_leaves_no_connection_half_read(
    one_connection: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection whose answers were not all read cannot leave pipeline mode; it is closed
    and replaced, never handed to the next transaction with those answers still pending."""
    factory = make_session_factory(one_connection)
    with UnitOfWork(factory) as uow:
        add(uow, "HELD1")
        uow.commit()
    fetch = batch._fetch
    read: list[object] = []

    def interrupted(pgconn: object) -> object:
        if read:
            raise Interrupted
        read.append(pgconn)
        return fetch(pgconn)

    monkeypatch.setattr(batch, "_fetch", interrupted)
    with pytest.raises(Interrupted), UnitOfWork(factory) as uow:
        uow.orders.lock("1000", "HELD1")  # BEGIN read, then the interruption
    monkeypatch.setattr(batch, "_fetch", fetch)
    with UnitOfWork(factory) as uow:
        order = uow.orders.lock("1000", "HELD1")
        assert order is not None and order.order_reference == "HELD1"
        add(uow, "HELD2")
        uow.commit()
    assert orders(factory) == ["HELD1", "HELD2"]


def test_a_unit_of_work_is_one_transaction_though_the_driver_autocommits(engine: Engine) -> None:
    """The BEGIN is sent with the first statement (app/adapters/batch.py, install)."""
    factory = make_session_factory(engine)
    setting = text("SELECT now(), current_setting('transaction_isolation')")
    with UnitOfWork(factory) as uow:
        first = uow.connection.execute(setting).one()
        time.sleep(0.01)
        assert uow.orders.lock("1000", "NOSUCH") is None  # a batch in between
        second = uow.connection.execute(setting).one()
    assert first == second, "now() is the transaction's start: the same one throughout"
    assert first[1] == "read committed"


def test_a_read_is_one_read_only_snapshot(engine: Engine) -> None:
    factory = make_session_factory(engine)
    setting = text(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
    )
    with UnitOfWork(factory, snapshot=True) as uow:
        assert uow.orders.get("1000", "NOSUCH") is None  # the first message, with the BEGIN
        assert uow.connection.execute(setting).one() == ("repeatable read", "on")


# --- a credential checked by the transaction itself (app/adapters/keys.py) ---------------


@pytest.fixture
def revoked_credential(engine: Engine) -> Iterator[None]:
    """The request's credential: a key of business 1000, revoked since it was last used."""
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        key = create_key(session, ["1000"], "merchant", "test")
        revoke_key(session, key[:12])
    token = keys.unchecked.set(keys.Credential(keys.key_hash(key), "1000"))
    yield
    keys.unchecked.reset(token)


@pytest.mark.usefixtures("revoked_credential")
def test_a_revoked_key_cannot_commit_a_write_sent_with_its_commit(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(keys.KeyNotLive), UnitOfWork(factory) as uow:
        add(uow, "HELD1")  # nothing read first: the check and the rows go before the COMMIT
        uow.commit()
    assert keys.unchecked.get() is not None, "still unchecked: nothing passed"
    assert orders(factory) == []


@pytest.mark.usefixtures("revoked_credential")
def test_a_revoked_key_is_refused_before_a_plain_statement_runs(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(keys.KeyNotLive), UnitOfWork(factory) as uow:
        uow.connection.execute(text("SELECT 1"))


def test_a_live_key_is_checked_once_per_request(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        key = create_key(session, ["1000"], "merchant", "test")
    token = keys.unchecked.set(keys.Credential(keys.key_hash(key), "1000"))
    try:
        with UnitOfWork(factory) as uow:
            add(uow, "HELD1")
            uow.commit()
        assert keys.unchecked.get() is None, "checked by the write's transaction"
        other = keys.Credential(keys.key_hash(key), "2000")  # a business the key never held
        keys.unchecked.set(other)
        with pytest.raises(keys.KeyNotLive), UnitOfWork(factory) as uow:
            uow.orders.lock("1000", "HELD1")
    finally:
        keys.unchecked.reset(token)
    assert orders(factory) == ["HELD1"]
