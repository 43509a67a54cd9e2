"""One use case = one transaction: rolled back unless the use case commits."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import batch
from app.adapters.idempotency import IdempotencyStore
from app.adapters.repository import OrderRepository
from app.domain.errors import DomainError, RuleViolation, StateConflict

T = TypeVar("T")

# Unique keys another request can win at the same moment, and what losing them means.
TAKEN = {"pk_orders": "order-exists", "pk_invoices": "invoice-exists"}

# PostgreSQL SQLSTATEs worth another attempt: serialization failure, deadlock. A lock
# timeout (55P03) is not: its wait already spent the request's lock budget (db.py).
RETRYABLE = {"40001", "40P01"}
LOCK_TIMEOUT = "55P03"
# A write's statement cancelled at its transaction's budget (app/adapters/batch.py): in a
# write transaction, a wait for a busy order.
STATEMENT_TIMEOUT = "57014"
# A deadlock or serialization failure is tried again only while the request has spent less
# than this on its attempts, so lock waits stay bounded in total, not per attempt.
RETRY_BUDGET_S = 2.0
# SQLSTATE classes and codes that say the database, not the request, failed: connection
# exceptions (08), operator intervention (57: admin shutdown, crash shutdown, cannot connect
# now, query cancelled by statement_timeout), insufficient resources (53: too many
# connections), and a server shutting down (57P01-57P03).
UNAVAILABLE_CLASSES = ("08", "57", "53")


class Busy(DomainError):
    """The order stayed locked by others through every retry (HTTP 503 with Retry-After)."""

    code = "order-busy"


class DatabaseUnavailable(DomainError):
    """The database could not be reached or did not answer in time (HTTP 503).

    Nothing is known to be written; for a write whose COMMIT was sent, it may have been:
    only a retry with the same Idempotency-Key tells, and it is always safe."""

    code = "database-unavailable"


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

    No ORM session: the repositories run Core statements on the connection, so a session
    would only add its own transaction bookkeeping to every use case. On PostgreSQL they send
    them together where they can, and hold a write's rows until the COMMIT
    (app/adapters/batch.py): a statement run on `connection` itself sees those rows only
    after a repository's next statement.
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
        self._connection = connection
        self.statements = batch.Immediate(connection)
        try:
            # On PostgreSQL the transaction (a read's: one snapshot) begins with the first
            # statements sent (app/adapters/batch.py).
            self.statements = batch.statements(connection, write=not self.snapshot)
            self.transaction = connection.begin()
        except BaseException:
            self._end()
            raise
        self.orders = OrderRepository(connection, self.statements)
        self.idempotency = IdempotencyStore(self.statements)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Rolls back whatever was not committed; an engine's connection goes back to the pool.
        try:
            if self.snapshot and exc is None and self.transaction.is_active:
                # Ends it as a ROLLBACK would (it wrote nothing), and psycopg keeps the
                # statements it prepared: it forgets them all at every ROLLBACK.
                self.transaction.commit()
        finally:
            self._end()

    @property
    def connection(self) -> Connection:
        """The connection, for statements outside the repositories: the transaction is begun
        and the repositories' writes are sent before it is handed out."""
        return self.statements.immediate().connection

    def _end(self) -> None:
        try:
            if self._connection.in_transaction():
                self._connection.rollback()
        finally:
            self.statements.release()
            if not self._shared:
                self._connection.close()  # back to the pool

    def commit(self) -> None:
        self.committing = True
        self.statements.commit()
        self.transaction.commit()

    def rollback(self) -> None:
        self.statements.rollback()
        self.transaction.rollback()


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def _unique_violation(error: IntegrityError) -> bool:
    return _sqlstate(error) == "23505" or "UNIQUE constraint failed" in str(error.orig)


def unavailable(error: BaseException) -> bool:
    """Whether a database error means the database, not the request, failed: a lost or
    refused connection, a shutdown, a timeout, no free connection."""
    if isinstance(error, SQLAlchemyTimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(error, DBAPIError):
        return False
    state = _sqlstate(error)
    if state is None:  # no SQLSTATE: unavailable only when the connection failed
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return state.startswith(UNAVAILABLE_CLASSES)


def run(
    session_factory: sessionmaker[Session],
    use_case: Callable[[UnitOfWork], T],
    attempts: int = 4,
    snapshot: bool = False,
) -> T:
    """Run a use case in its own transaction, retrying deadlocks within the lock budget.

    A pooled connection the server has closed (a restart, an idle timeout) is not pinged
    before use: its first statement fails, the pool drops it, and the use case runs again on a
    fresh one, since nothing was written. Not when the COMMIT itself failed: whether it took
    effect is then unknown, and only the client's Idempotency-Key can make a retry safe.
    A lock timeout is Busy at once (503 order-busy); a database that fails is
    DatabaseUnavailable (503 database-unavailable).
    """
    started = time.monotonic()
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
            state = _sqlstate(error)
            waited = state == LOCK_TIMEOUT or (state == STATEMENT_TIMEOUT and not snapshot)
            if waited or "database is locked" in str(error.orig):
                raise Busy("the order is busy; retry shortly") from error
            if unavailable(error):
                raise DatabaseUnavailable("the database is unavailable; retry shortly") from error
            if state not in RETRYABLE:
                raise
            pause = 0.02 * 2**attempt
            if attempt == attempts or time.monotonic() - started + pause > RETRY_BUDGET_S:
                raise Busy("the order is busy; retry shortly") from error
            time.sleep(pause)
        except SQLAlchemyTimeoutError as error:
            raise DatabaseUnavailable("no database connection came free in time") from error
    raise AssertionError("unreachable")
