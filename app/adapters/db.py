"""Engines for PostgreSQL (production) and SQLite (the embedded default)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app import jsoncodec
from app.adapters import batch


def make_engine(url: str, batches: bool = True, **options: Any) -> Engine:
    """An engine whose transactions serialize writes to one order (SPEC section 7).

    On PostgreSQL, `batches=False` leaves transactions to the driver (psycopg sends BEGIN
    before a transaction's first statement): the same pool and timeouts without the
    service's batches of SQL, for the benchmark's bare handler."""
    options.setdefault("json_serializer", jsoncodec.dumps)
    options.setdefault("json_deserializer", jsoncodec.loads)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        _serialize_sqlite_writes(engine)
        return engine
    # READ COMMITTED plus the order row lock taken first by every write is enough: every
    # rule about an order is checked while its lock is held. Lock waits are bounded so a
    # stuck transaction becomes a retry or a 503, never a hung worker. No ping before each
    # checkout (a round trip per request): a dead pooled connection fails its first statement
    # and the use case is retried on a fresh one (unit_of_work.run).
    # The driver in autocommit mode: the service begins its transactions itself, the BEGIN
    # in the same message as the first statements (app/adapters/batch.py, install).
    if batches:
        options["isolation_level"] = "AUTOCOMMIT"
    engine = create_engine(
        url,
        pool_size=options.pop("pool_size", 5),
        max_overflow=options.pop("max_overflow", 5),
        connect_args={
            "options": "-c lock_timeout=5000 -c statement_timeout=30000",
            # psycopg prepares statements it sees often, and deallocates every prepared
            # statement of the session after a ROLLBACK; the hot paths prepare their own
            # (app/adapters/batch.py), so psycopg's are off.
            "prepare_threshold": None,
        },
        **options,
    )
    if batches:
        batch.install(engine)
    return engine


def _serialize_sqlite_writes(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # SQLite has no row locks: every transaction takes the write lock up front.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
