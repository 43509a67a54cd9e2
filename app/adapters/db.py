"""Engines for PostgreSQL (production) and SQLite (the embedded default)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app import jsoncodec
from app.config import database_url

# The time budget of one request's database work (docs/operations.md, "Time budget"); every
# figure in milliseconds, each below gunicorn's 30 s worker timeout together.
LOCK_TIMEOUT_MS = 2000  # a busy order answers 503 order-busy after this (no retry after it)
STATEMENT_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 2
POOL_TIMEOUT_S = 2  # waiting for a free pooled connection
# TCP: a peer gone silent (a dead host, a cut network) is noticed within about 15 s.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def threads() -> int:
    """Requests a process serves at once (gunicorn.conf.py reads the same variable)."""
    return int(os.environ.get("ACCOUNTING_THREADS") or 8)


def prepares() -> bool:
    """Whether psycopg prepares statements on the connection (named, once per connection);
    ACCOUNTING_DB_PREPARE=off behind PgBouncer in transaction pooling mode."""
    return os.environ.get("ACCOUNTING_DB_PREPARE", "on").lower() not in ("off", "0", "false")


def make_engine(
    url: str, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS, **options: Any
) -> Engine:
    """An engine whose transactions serialize writes to one order (SPEC section 7).

    Commands that read the whole database (`accounting verify`) give statements longer than a
    request's."""
    options.setdefault("json_serializer", jsoncodec.dumps)
    options.setdefault("json_deserializer", jsoncodec.loads)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": LOCK_TIMEOUT_MS / 1000}, **options)
        _serialize_sqlite_writes(engine)
        return engine
    # READ COMMITTED plus the order row lock taken first by every write is enough: every
    # rule about an order is checked while its lock is held. Lock waits are bounded so a
    # stuck transaction becomes a retry or a 503, never a hung worker (a write transaction
    # sets its own budget too: app/adapters/batch.py). No ping before each checkout (a round
    # trip per request): a dead pooled connection fails its first statement and the use case
    # is retried on a fresh one (unit_of_work.run).
    options.setdefault("isolation_level", "READ COMMITTED")
    engine = create_engine(
        url,
        # A connection per thread, and two for a request's key lookup beside its transaction.
        pool_size=options.pop("pool_size", threads()),
        max_overflow=options.pop("max_overflow", 2),
        pool_timeout=options.pop("pool_timeout", POOL_TIMEOUT_S),
        connect_args={
            "options": f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout="
            f"{statement_timeout_ms}",
            "connect_timeout": CONNECT_TIMEOUT_S,
            **KEEPALIVES,
            # psycopg's default otherwise: a statement prepared at its fifth run, or at its
            # first when asked (app/adapters/batch.py).
            **({} if prepares() else {"prepare_threshold": None}),
        },
        **options,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg sends an int as the smallest type that holds it, and prepares a statement
        # per set of types: as bigint always, one statement prepared serves every value.
        dbapi_connection.adapters.register_dumper(int, Int8Dumper)
        dbapi_connection.adapters.register_dumper(int, Int8BinaryDumper)

    return engine


# A command reads the whole database (verify) or many invoices at once: not a request's 5 s.
COMMAND_STATEMENT_TIMEOUT_MS = 600_000


@contextmanager
def command_engine(url: str | None = None, **options: Any) -> Iterator[Engine]:
    """A command's engine on url (default: DATABASE_URL), disposed when the command is done;
    statement parameters are kept out of every error message."""
    options.setdefault("statement_timeout_ms", COMMAND_STATEMENT_TIMEOUT_MS)
    engine = make_engine(url or database_url(), hide_parameters=True, **options)
    try:
        yield engine
    finally:
        engine.dispose()


def make_probe_engine(url: str) -> Engine:
    """Fresh connections for health checks: each connects within the connect timeout and
    answers within the statement timeout, whatever the request pool is stuck on."""
    if url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool, connect_args={"timeout": 1})
    return create_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "options": "-c statement_timeout=2000",
            "connect_timeout": CONNECT_TIMEOUT_S,
            **KEEPALIVES,
        },
    )


def _serialize_sqlite_writes(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # SQLite has no row locks: every transaction takes the write lock up front.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
