"""PostgreSQL: several statements sent together, answered in one round trip.

The hot paths (the key lookup, loading an order under its lock, the credit-note reference
check, storing a write's rows) send their statements to the server as one batch: libpq's
pipeline mode, every statement queued, then a Sync, all flushed in one write. The server
runs them in order, so a load's first statement (the order's row lock) is held before the
next one reads; a statement that fails stops the batch (the server skips the rest up to the
Sync) and fails the transaction, as it would on its own.

- Reads and UPDATEs are statements prepared once per connection (PREPARE, then Bind and
  Execute with the values): PostgreSQL plans them once, not on every request.
- New rows go as one multi-row INSERT per table, prepared too for a given number of rows (up
  to PREPARED_INSERT_ROWS); more rows go as plain INSERTs, their values parameters too.
- Values travel as parameters in text form, dumped by psycopg's own adapters; no value is
  ever formatted into SQL by hand, and the server parses no literal.
- A write's statements need no answer, so they are held back (`Batch.defer`) and go at the
  front of the transaction's next batch: the next read's, or the COMMIT's, so a write and
  its commit cost one round trip. Before any other statement runs on the connection, they
  are sent first, on their own; a rollback drops them (`install`).

Why: per statement, SQLAlchemy's execution (statement cache, parameter processing, result
set-up) and a psycopg cursor's exchange in pipeline mode cost more client CPU than
PostgreSQL spends running the statement; libpq's own calls cost a fraction of it. Every
other statement, and SQLite, stays on SQLAlchemy. A driver error is raised as the
SQLAlchemy error SQLAlchemy would have raised (an IntegrityError for a taken key; a dead
connection invalidated, so the unit of work runs the use case again on a fresh one), naming
the statements without their values: those hold customer data, and errors reach the logs.
"""

from __future__ import annotations

import functools
import itertools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import abc as pg
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import fetch_many as _fetch
from psycopg.generators import send as _flush
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGconn
from sqlalchemy import JSON, Connection, Engine, Table, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from app import jsoncodec

_DIALECT = postgresql.dialect(paramstyle="numeric_dollar")
_QUOTE = _DIALECT.identifier_preparer

TUPLES_OK = ExecStatus.TUPLES_OK
FATAL_ERROR = ExecStatus.FATAL_ERROR
PIPELINE_SYNC = ExecStatus.PIPELINE_SYNC
TEXT = PyFormat.TEXT
LOST_PREPARED_STATEMENT = "26000"  # invalid_sql_statement_name

# The statements prepared on each live connection (prepared statements outlive transactions,
# rollbacks included, and die with the connection).
_prepared_on: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[str]] = (
    weakref.WeakKeyDictionary()
)


# A transaction's BEGIN (and its settings), until its first statement is sent (install).
_not_begun: weakref.WeakKeyDictionary[Connection, tuple[bytes, ...]] = weakref.WeakKeyDictionary()
BEGIN = b"BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"
BEGIN_SNAPSHOT = (b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",)
# Execution option of a transaction that reads one snapshot and writes nothing.
SNAPSHOT = "accounting_snapshot"
# Engine execution option: False sends every statement unnamed, with its SQL, never a named
# prepared statement (PgBouncer in transaction pooling mode: a prepared statement lives on one
# server connection, the next transaction may run on another).
PREPARE = "accounting_prepare"

# Writes held back on a transaction's connection until its next message (Batch.defer).
_deferred: weakref.WeakKeyDictionary[Connection, Batch] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Guard:
    """A condition of the whole transaction, checked by its first message right after the
    BEGIN: `statement` must return a row, else `refusal()` is raised once the message is
    answered (the use case fails and its transaction is rolled back); `passed()` otherwise."""

    statement: Prepared
    params: dict[str, Any]
    refusal: Callable[[], BaseException]
    passed: Callable[[], None]


# A transaction's guard, until its first message is sent (guard, install).
_guards: weakref.WeakKeyDictionary[Connection, Guard] = weakref.WeakKeyDictionary()


def driver(connection: Connection) -> psycopg.Connection[Any] | None:
    """The psycopg connection under a SQLAlchemy one; None on SQLite."""
    raw = connection.connection.driver_connection
    return raw if isinstance(raw, psycopg.Connection) else None


@dataclass(frozen=True)
class Prepared:
    """A Core statement prepared under a name; its parameters by name, in $n order."""

    name: str
    sql: str
    params: tuple[str, ...]
    defaults: dict[str, Any]

    @classmethod
    def of(cls, name: str, statement: Any) -> Prepared:
        compiled = statement.compile(dialect=_DIALECT)
        return cls(name, compiled.string, tuple(compiled.positiontup), compiled.params)


class Batch:
    """Statements for one round trip on one connection, each with its values."""

    def __init__(self, connection: Connection):
        raw = driver(connection)
        assert raw is not None, "batches are for PostgreSQL"
        self.connection, self.raw = connection, raw
        self._tx = _transformer(connection, raw)
        self._preparing = connection.get_execution_options().get(PREPARE, True)
        # (SQL, or the name of a prepared statement; its values; prepared?)
        self.statements: list[tuple[bytes, Sequence[Any], bool]] = []
        self.described: list[str] = []  # the statements without their values, for errors
        self._prepare: list[Prepared] = []

    def execute(self, statement: Prepared, **params: Any) -> None:
        """EXECUTE a prepared statement with these values (its fixed ones by default)."""
        values = [params[n] if n in params else statement.defaults[n] for n in statement.params]
        self._execute(statement, values)

    def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Multi-row INSERTs; every row has the same keys (a mapper's rows do). Up to
        PREPARED_INSERT_ROWS rows, one statement prepared for that many rows; beyond, plain
        INSERTs of up to PLAIN_INSERT_ROWS rows each."""
        columns = tuple(rows[0])
        head, encode, width = _insert_sql(table, columns)
        described = f"INSERT INTO {table.name}: {len(rows)} rows"
        if len(rows) <= PREPARED_INSERT_ROWS:
            values = [value for row in rows for value in encode(row)]
            self._execute(_prepared_insert(table, columns, len(rows)), values, described)
            return
        for start in range(0, len(rows), PLAIN_INSERT_ROWS):
            chunk = rows[start : start + PLAIN_INSERT_ROWS]
            sql = head + _placeholders(width, len(chunk)).encode()
            values = [value for row in chunk for value in encode(row)]
            self.statements.append((sql, values, False))
            self.described.append(described)

    def update(self, statement: Any, table: Table, rows: list[dict[str, Any]]) -> None:
        """A Core UPDATE by primary key (`mapper.update_statement`), prepared, once per row."""
        prepared, json = _prepared_update(statement, table)
        for row in rows:
            self.execute(prepared, **{k: _value(v, k in json) for k, v in row.items()})

    def defer(self) -> None:
        """Send these writes in front of the transaction's next message (see `install`)."""
        held = _deferred.setdefault(self.connection, self)
        if held is not self:
            held._add(self, in_front=False)

    def results(self) -> list[list[Any]]:
        """Send the batch after what the transaction still owes the server (its BEGIN, the
        writes held back); the rows of each of the batch's own statements, in order (none
        for a write)."""
        own = len(self.statements)
        held = _deferred.pop(self.connection, None)
        if held is not None:
            self._add(held, in_front=True)
        begin = _not_begun.pop(self.connection, None)
        guard = _guards.pop(self.connection, None) if begin is not None else None
        if guard is not None:  # checked first, before anything is locked or read
            values = [guard.params[n] for n in guard.statement.params]
            self._execute(guard.statement, values, at=0)
        if begin is not None:  # the transaction's first message: it starts with the BEGIN
            self.statements[:0] = [(statement, (), False) for statement in begin]
            self.described[:0] = ["BEGIN"] * len(begin)
        rows = self._send()
        if guard is not None:
            if not rows[len(begin or ())]:
                raise guard.refusal()
            guard.passed()
        return rows[len(rows) - own :]

    def _send(self) -> list[list[Any]]:
        """The rows of every statement of the batch, in order (none for a write).

        The statements go in pipeline mode through libpq, without a cursor (its per-result
        bookkeeping cost more than loading the few rows a batch reads), and flush in one
        write; a Sync ends them, so the server answers them in one round trip. The values
        travel as parameters in text form (psycopg's dumpers), never inside the SQL."""
        self._prepare_statements()
        dump = self._tx.dump_sequence
        sent = [
            (sql, dump(values, [TEXT] * len(values)) if values else None, prepared)
            for sql, values, prepared in self.statements
        ]
        raw = self.raw
        pgconn = raw.pgconn
        try:
            with raw.lock:
                pgconn.enter_pipeline_mode()
                try:
                    for sql, params, prepared in sent:
                        if prepared:
                            pgconn.send_query_prepared(sql, params)
                        else:
                            pgconn.send_query_params(sql, params)
                    pgconn.pipeline_sync()
                    raw.wait(_flush(pgconn))
                    results = []
                    while (got := raw.wait(_fetch(pgconn))) and got[0].status != PIPELINE_SYNC:
                        results.append(got[-1])
                finally:
                    _leave_pipeline(pgconn)
        except psycopg.Error as error:
            raise _translated(self.connection, "; ".join(self.described), error) from error
        except BaseException as error:
            if raw.closed:  # by _leave_pipeline: the transaction ends without its connection
                self.connection.invalidate(error)
            raise
        rows: list[list[Any]] = []
        for result in results:
            status = result.status
            if status == TUPLES_OK:
                self._tx.set_pgresult(result)
                rows.append(self._tx.load_rows(0, result.ntuples, tuple))
            elif status == FATAL_ERROR:
                # The server ran no statement after this one: the pipeline ends here.
                failed = psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
                raise _translated(self.connection, "; ".join(self.described), failed) from failed
            else:
                rows.append([])
        return rows

    def _add(self, other: Batch, in_front: bool) -> None:
        if in_front:
            self.statements[:0], self.described[:0] = other.statements, other.described
        else:
            self.statements += other.statements
            self.described += other.described
        self._prepare += [p for p in other._prepare if p not in self._prepare]

    def _execute(
        self,
        statement: Prepared,
        values: Sequence[Any],
        described: str = "",
        at: int | None = None,
    ) -> None:
        """EXECUTE the statement, last or at index `at` of the batch (unnamed, with its SQL,
        when the engine does not prepare)."""
        at = len(self.statements) if at is None else at
        if not self._preparing:
            self.statements.insert(at, (statement.sql.encode(), values, False))
            self.described.insert(at, described or f"EXECUTE {statement.name}")
            return
        if statement.name not in _prepared_on.get(self.raw, ()) and statement not in self._prepare:
            self._prepare.append(statement)
        self.statements.insert(at, (statement.name.encode(), values, True))
        self.described.insert(at, described or f"EXECUTE {statement.name}")

    def _prepare_statements(self) -> None:
        if not self._prepare:
            return
        sql = ";\n".join(f"PREPARE {p.name} AS {p.sql}" for p in self._prepare)
        try:
            self.raw.execute(sql.encode())
        except psycopg.Error as error:
            raise _translated(self.connection, sql, error) from error  # no values in it
        _prepared_on.setdefault(self.raw, set()).update(p.name for p in self._prepare)


def install(engine: Engine, write_statement_timeout_ms: int) -> None:
    """Transactions on PostgreSQL: the driver runs in autocommit mode and never starts one
    itself. A transaction's BEGIN waits for its first statement and goes in the same message
    as a batch, or just before a SQLAlchemy statement; held-back writes go with the COMMIT,
    or before any other statement; a rollback drops both. The COMMIT in a message ends the
    transaction on the server, so the driver's own commit that follows finds none open and
    sends nothing (psycopg sends COMMIT and ROLLBACK only while the server has a transaction
    open, whatever its autocommit setting).

    A write transaction's statements each end within `write_statement_timeout_ms`: lock_timeout
    bounds each lock wait, but a second writer of a busy order waits twice (for the tuple
    lock its first writer holds, then for the transaction), so only a statement timeout bounds
    the wait in total. Both are set for the transaction itself, so they hold behind a pooler
    that ignores connection options (PgBouncer)."""
    timeout = b"'%d'" % write_statement_timeout_ms
    write_begin = (
        BEGIN,
        b"SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)"
        % (timeout, timeout),
    )

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # asked for explicitly: every statement on its own
        _not_begun[connection] = BEGIN_SNAPSHOT if options.get(SNAPSHOT) else write_begin

    @event.listens_for(engine, "before_execute")
    def _before_execute(connection: Connection, *_: Any) -> None:
        held = _deferred.pop(connection, None)
        if held is not None:
            held.results()  # with the BEGIN in front, if it is still to be sent
            return
        if connection in _guards:
            Batch(connection).results()  # the BEGIN and the guard, on their own
            return
        begin = _not_begun.pop(connection, None)
        if begin is not None:
            raw = driver(connection)
            assert raw is not None
            try:
                raw.execute(b"; ".join(begin))  # no values: one simple query
            except psycopg.Error as error:
                raise _translated(connection, "BEGIN", error) from error

    @event.listens_for(engine, "commit")
    def _commit(connection: Connection) -> None:
        held = _deferred.pop(connection, None)
        if held is None:
            _not_begun.pop(connection, None)  # nothing ran: nothing to begin or commit
            _guards.pop(connection, None)
        else:
            try:
                if connection in _guards:
                    # The transaction's guard must pass before its COMMIT is sent.
                    held.results()
                    held = Batch(connection)
                held.statements.append((b"COMMIT", (), False))
                held.described.append("COMMIT")
                held.results()
            except Exception as error:
                # A statement failed, so the server skipped the COMMIT after it, or the guard
                # refused: the transaction is still open. End it as a failed COMMIT would:
                # SQLAlchemy counts the transaction as over and will not roll it back.
                if not getattr(error, "connection_invalidated", False):
                    held.raw.rollback()
                raise

    @event.listens_for(engine, "rollback")
    def _rollback(connection: Connection) -> None:
        _deferred.pop(connection, None)
        _not_begun.pop(connection, None)
        _guards.pop(connection, None)


def guard(connection: Connection, condition: Guard) -> None:
    """Check `condition` in the first message of the transaction begun on `connection`."""
    assert connection in _not_begun, "a guard goes with a transaction not yet sent"
    _guards[connection] = condition


def query(connection: Connection, statement: Prepared, **params: Any) -> list[Any]:
    """The rows of one prepared statement, in a batch of its own."""
    one = Batch(connection)
    one.execute(statement, **params)
    return one.results()[0]


_TRANSFORMER = "accounting_transformer"  # the key of a connection's Transformer in its info


def _transformer(connection: Connection, raw: psycopg.Connection[Any]) -> pg.Transformer:
    """The connection's psycopg adaptation context, built once per driver connection as a
    cursor keeps one: a new one looks up and builds a dumper for every type it meets."""
    held = connection.info.get(_TRANSFORMER)
    if held is None or held[0] is not raw:
        held = connection.info[_TRANSFORMER] = (raw, Transformer(raw))
    return held[1]


def _leave_pipeline(pgconn: PGconn) -> None:
    """Back to normal mode; a connection that cannot leave (its answers not all read, when
    an exception interrupted reading them) is closed, so it is dropped, never reused."""
    try:
        pgconn.exit_pipeline_mode()
    except psycopg.Error:
        pgconn.finish()


def _translated(connection: Connection, statement: str, error: psycopg.Error) -> BaseException:
    """The SQLAlchemy error; `statement` names what ran without the values (customer data)."""
    dead = connection.dialect.is_disconnect(error, connection.connection, None)  # type: ignore[arg-type]
    # A session that lost the statements prepared on it (someone ran DEALLOCATE ALL or
    # DISCARD ALL on it) is dropped like a dead one: the use case runs again on a fresh one.
    dead = dead or error.sqlstate == LOST_PREPARED_STATEMENT
    if dead:
        connection.invalidate(error)
    return DBAPIError.instance(
        statement, None, error, psycopg.Error, True, connection_invalidated=dead
    )


def _value(value: Any, json: bool) -> Any:
    """A column's value as sent: a JSON column's as JSON text (SQLAlchemy's JSON type does
    the same with the engine's serializer, app.jsoncodec)."""
    return jsoncodec.dumps(value) if json and value is not None else value


Encoder = Callable[[dict[str, Any]], list[Any]]


def _encoder(table: Table, columns: tuple[str, ...], created: bool = False) -> Encoder:
    """A row's values in column order, JSON columns as JSON text; with created, the time now
    last (the column's default, which SQLAlchemy would have filled)."""
    json = [i for i, n in enumerate(columns) if isinstance(table.c[n].type, JSON)]

    def encode(row: dict[str, Any]) -> list[Any]:
        values = [row[n] for n in columns]
        for i in json:
            values[i] = _value(values[i], True)
        if created:
            values.append(datetime.now(UTC))
        return values

    return encode


@functools.cache
def _insert_sql(table: Table, columns: tuple[str, ...]) -> tuple[bytes, Encoder, int]:
    """The INSERT up to its VALUES, a row's values in order, and how many there are."""
    created = "created_at" in table.c and "created_at" not in columns
    names = (*columns, "created_at") if created else columns
    quoted = ", ".join(_QUOTE.quote(n) for n in names)
    head = f"INSERT INTO {_QUOTE.format_table(table)} ({quoted}) VALUES "
    return head.encode(), _encoder(table, columns, created), len(names)


# A write adds a few rows to a table (a correction: 6 journal lines); a statement is
# prepared per table, column set and number of rows up to this many, so a connection holds
# a bounded number of them. More rows go as plain multi-row INSERTs, this many rows at most
# each (a statement takes at most 65,535 parameters).
PREPARED_INSERT_ROWS = 16
PLAIN_INSERT_ROWS = 1000
_STATEMENT_NUMBERS = itertools.count()


@functools.cache
def _prepared_insert(table: Table, columns: tuple[str, ...], rows: int) -> Prepared:
    """INSERT of this many rows, its values as parameters in the encoder's order."""
    head, _, width = _insert_sql(table, columns)
    name = f"aas_insert_{table.name}_{next(_STATEMENT_NUMBERS)}_{rows}"
    return Prepared(name, head.decode() + _placeholders(width, rows), (), {})


def _placeholders(width: int, rows: int) -> str:
    """($1, ..., $width), ... for this many rows."""
    numbers = iter(range(1, rows * width + 1))
    return ", ".join(
        "(" + ", ".join(f"${next(numbers)}" for _ in range(width)) + ")" for _ in range(rows)
    )


@functools.cache
def _prepared_update(statement: Any, table: Table) -> tuple[Prepared, frozenset[str]]:
    """The statement prepared under a name of its own; its JSON columns' parameters."""
    name = f"aas_update_{table.name}_{next(_STATEMENT_NUMBERS)}"
    json = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
    return Prepared.of(name, statement), json
