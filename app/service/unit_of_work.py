"""One use case = one transaction: rolled back unless the use case commits."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import keys
from app.adapters.batch import SNAPSHOT
from app.adapters.idempotency import IdempotencyStore
from app.adapters.repository import OrderRepository
from app.domain.errors import DomainError, RuleViolation, StateConflict

T = TypeVar("T")

# Unique keys another request can win at the same moment, and what losing them means.
TAKEN = {"pk_orders": "order-exists", "pk_invoices": "invoice-exists"}

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock timeout.
RETRYABLE = {"40001", "40P01", "55P03"}


class Busy(DomainError):
    """The order stayed locked by others through every retry (HTTP 503 with Retry-After)."""

    code = "order-busy"


class DuplicateReference(StateConflict):
    """Another request took the same reference at the same moment (HTTP 409)."""

    code = "reference-taken"


class RequestInFlight(StateConflict):
    """A request with the same Idempotency-Key is still running (HTTP 409)."""

    code = "request-in-flight"


class IdempotencyKeyReused(RuleViolation):
    """The Idempotency-Key was used before with another request (HTTP 422)."""

    code = "idempotency-key-reused"


class UnitOfWork:
    """A connection in one transaction and its repositories, for the length of one use case.

    No ORM session: the repositories run Core statements and batches on the connection, so a
    session would only add its own transaction bookkeeping to every use case.
    """

    def __init__(self, session_factory: sessionmaker[Session], snapshot: bool = False):
        self.session_factory = session_factory
        self.snapshot = snapshot
        self.committing = False

    def __enter__(self) -> UnitOfWork:
        # The factory's bind: the engine, or one connection that a batch's transactions share
        # one after the other (tax_correction.on_one_connection), left open at the end.
        bind: Engine | Connection = self.session_factory.kw["bind"]
        self._shared = isinstance(bind, Connection)
        connection = bind if isinstance(bind, Connection) else bind.connect()
        try:
            if self.snapshot and connection.dialect.name == "postgresql":
                # A read loads an order in several statements; one snapshot makes them agree,
                # so no reader sees half of a write (READ COMMITTED would, between statements):
                # REPEATABLE READ, READ ONLY (app/adapters/batch.py).
                connection.execution_options(**{SNAPSHOT: True})
            self.transaction = connection.begin()
            self.connection = connection
            # A key the API took as live is checked by the transaction itself (app/api/auth.py).
            keys.check_unchecked(connection)
        except BaseException:
            self._end(connection)
            raise
        self.orders = OrderRepository(connection)
        self.idempotency = IdempotencyStore(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Rolls back whatever was not committed; an engine's connection goes back to the pool.
        self._end(self.connection)

    def _end(self, connection: Connection) -> None:
        if not self._shared:
            connection.close()
            return
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            if self.snapshot:
                connection.execution_options(**{SNAPSHOT: False})

    def commit(self) -> None:
        self.committing = True
        self.transaction.commit()

    def rollback(self) -> None:
        self.transaction.rollback()


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def _unique_violation(error: IntegrityError) -> bool:
    return _sqlstate(error) == "23505" or "UNIQUE constraint failed" in str(error.orig)


def run(
    session_factory: sessionmaker[Session],
    use_case: Callable[[UnitOfWork], T],
    attempts: int = 4,
    snapshot: bool = False,
) -> T:
    """Run a use case in its own transaction, retrying lock timeouts and deadlocks.

    A pooled connection the server has closed (a restart, an idle timeout) is not pinged
    before use: its first statement fails, the pool drops it, and the use case runs again on a
    fresh one, since nothing was written. Not when the COMMIT itself failed: whether it took
    effect is then unknown, and only the client's Idempotency-Key can make a retry safe.
    """
    for attempt in range(1, attempts + 1):
        uow = UnitOfWork(session_factory, snapshot)
        try:
            with uow:
                return use_case(uow)
        except IntegrityError as error:
            if not _unique_violation(error):
                raise  # a check constraint failed: a bug, never a client's race
            constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
            raise DuplicateReference(
                "a document with this reference was created at the same moment",
                code=TAKEN.get(constraint or "", DuplicateReference.code),
            ) from error
        except DBAPIError as error:
            if error.connection_invalidated and not uow.committing and attempt < attempts:
                continue
            retryable = _sqlstate(error) in RETRYABLE or "database is locked" in str(error.orig)
            if not retryable:
                raise
            if attempt == attempts:
                raise Busy("the order is busy; retry shortly") from error
            time.sleep(0.02 * 2**attempt)
    raise AssertionError("unreachable")
