"""How a unit of work's statements reach the database: on PostgreSQL, together.

On PostgreSQL (`Pipeline`) the statements a repository needs at once (loading an order: its
row lock, then positions, invoices and the credit-note reference check) go in psycopg's
pipeline mode and are answered in one round trip. The server runs them in order; one that
fails stops the rest and fails the transaction, as it would on its own. Besides:

- The unit of work begins its transaction itself, with the BEGIN at the front of its first
  pipeline: the driver connection is in psycopg's autocommit mode for the unit of work's
  length (`Connection.autocommit`, put back by `release`), so psycopg sends no BEGIN of its
  own, which would cost a round trip before anything else is sent. psycopg's commit and
  rollback go by the server's transaction status, so they end the transaction so begun as
  they would their own. Before the connection itself runs a statement (`immediate`), what is
  owed is sent first. (SQLAlchemy's `isolation_level="AUTOCOMMIT"` would do the same, but
  on a connection kept open across transactions, a batch's, it remembers one reset per use
  until the connection goes back to the pool: memory growing with every invoice.)

- A write transaction's first pipeline starts with its budget: `statement_timeout` and
  `lock_timeout` set for that transaction only (`set_config(..., true)`), so they hold behind
  a pooler that ignores connection options (PgBouncer). lock_timeout bounds each lock wait,
  but a second writer of a busy order waits twice (for the tuple lock its first writer holds,
  then for that transaction), so only the statement timeout bounds its wait in total.
- A write's rows need no answer: they are held and sent with the COMMIT (`commit`), so
  storing and committing cost one round trip. A later pipeline sends them first, so the
  transaction reads its own writes through the repositories; a rollback drops them.
- Statements are Core statements compiled by SQLAlchemy once, their values psycopg's
  parameters. psycopg prepares them on the connection at first use, unless its preparing is
  off (`db.prepares`).

Elsewhere (SQLite, and a repository outside a unit of work) `Immediate` runs each statement
at once through SQLAlchemy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.pq import PipelineStatus, TransactionStatus
from sqlalchemy import JSON, Connection, Table, bindparam, insert
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.exc import DBAPIError

from app import jsoncodec
from app.adapters.db import LOCK_TIMEOUT_MS

Query = tuple[Any, dict[str, Any]]  # a Core statement and its values
Rows = Sequence[Sequence[Any]]

_DIALECT = psycopg_dialect.dialect(paramstyle="numeric_dollar")
BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"
# A read loads an order in several statements; one snapshot makes them agree, so no reader
# sees half of a write (READ COMMITTED would, between statements).
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_BUDGET = (
    f"SELECT set_config('statement_timeout', '{LOCK_TIMEOUT_MS}', true),"
    f" set_config('lock_timeout', '{LOCK_TIMEOUT_MS}', true)"
)


class Immediate:
    """Each statement at once, through SQLAlchemy."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def rows(self, *queries: Query) -> list[Rows]:
        """The rows of each statement, in order."""
        return [self.connection.execute(statement, values).all() for statement, values in queries]

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.connection.execute(_insert(table), rows)

    def update(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        """A Core UPDATE, once per row."""
        self.connection.execute(statement, rows)

    def immediate(self) -> Immediate:
        """Statements run at once on the connection, inside the transaction."""
        return self

    def commit(self) -> None:
        """Send what is held with the transaction's COMMIT (nothing is, here)."""

    def rollback(self) -> None:
        """Drop what is held (nothing is, here)."""

    def release(self) -> None:
        """Leave the connection as it was found (nothing to do, here)."""


class Pipeline(Immediate):
    """A unit of work's statements on PostgreSQL, sent together (see the module's docstring)."""

    def __init__(self, connection: Connection, driver: psycopg.Connection[Any], write: bool):
        super().__init__(connection)
        self.driver = driver
        self._writes = psycopg.RawCursor(driver)  # for statements whose answer is not read
        # What the transaction's first pipeline starts with: its BEGIN, and a write's budget.
        self._owed = [(BEGIN_WRITE, False), (_BUDGET, True)] if write else [(BEGIN_SNAPSHOT, False)]
        # SQL, the values of each time it runs, what it is (for an error: never the values),
        # and whether it is prepared
        self._held: list[tuple[str, list[list[Any]], str, bool]] = []

    def rows(self, *queries: Query) -> list[Rows]:
        return [cursor.fetchall() for cursor in self._send(queries)]

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Multi-row INSERTs: up to PREPARED_ROWS rows one statement prepared for that many
        rows (a write adds a few rows a table), beyond plain ones of up to PLAIN_ROWS rows."""
        columns = tuple(rows[0])
        size = len(rows) if len(rows) <= PREPARED_ROWS else PLAIN_ROWS
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            sql, order, json = _insert_sql(table, columns, len(chunk))
            values = [chunk[i][column] for i, column in order]
            for n in json:
                values[n] = _json(values[n])
            what = f"INSERT INTO {table.name}: {len(chunk)} rows"
            self._held.append((sql, [values], what, len(chunk) <= PREPARED_ROWS))

    def update(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        """An UPDATE by primary key, prepared, once per row."""
        sql, names, _ = _compiled(statement)
        json = _json_columns(statement.table)
        values = [[_json(row[n]) if n in json else row[n] for n in names] for row in rows]
        self._held.append((sql, values, f"UPDATE {statement.table.name}: {len(rows)} rows", True))

    def immediate(self) -> Immediate:
        """The connection itself, once the transaction is begun and its writes sent."""
        if self._owed or self._held:
            self._send(())
        return Immediate(self.connection)

    def commit(self) -> None:
        """The held writes and the COMMIT in one round trip; the driver's own commit that
        follows finds no transaction open and sends nothing (nor when none was begun)."""
        if self._held:
            self._send((), commit=True)

    def rollback(self) -> None:
        self._held.clear()

    def release(self) -> None:
        """End whatever transaction is still open and put psycopg's autocommit back."""
        self._held.clear()
        if self.driver.closed:
            return
        try:
            if self.driver.info.transaction_status != TransactionStatus.IDLE:
                self.driver.rollback()
            self.driver.autocommit = False
        except psycopg.Error as error:
            self.connection.invalidate(error)

    def _send(self, queries: Sequence[Query], commit: bool = False) -> list[psycopg.RawCursor[Any]]:
        """Send what the transaction owes (its BEGIN, a write's budget), the held writes,
        the queries (a cursor each) and the COMMIT if asked, then one Sync: one round trip."""
        owed, self._owed = self._owed, []
        held, self._held = self._held, []
        sent: list[str] = []
        cursors: list[psycopg.RawCursor[Any]] = []
        try:
            with self.driver.pipeline():
                writes = self._writes
                for sql, prepare in owed:
                    sent.append(sql)
                    writes.execute(sql, prepare=prepare)
                for sql, runs, what, prepare in held:
                    sent.append(what)
                    for values in runs:
                        writes.execute(sql, values, prepare=prepare)
                for statement, given in queries:
                    sql, names, fixed = _compiled(statement)
                    sent.append(sql)
                    cursor = psycopg.RawCursor(self.driver)
                    values = [given[n] if n in given else fixed[n] for n in names]
                    cursor.execute(sql, values, prepare=True)
                    cursors.append(cursor)
                if commit:
                    writes.execute("COMMIT", prepare=False)
        except psycopg.Error as error:
            raise self._failed(";\n".join(sent), error) from error
        except BaseException:
            # Interrupted (a signal, a timeout) before every answer was read: the connection
            # may still owe answers, so it is closed, never handed to the next transaction.
            self.connection.invalidate()
            raise
        return cursors

    def _failed(self, sql: str, error: psycopg.Error) -> Exception:
        """SQLAlchemy's error for it, the values left out (they hold customer data). A lost
        connection, or one left in pipeline mode, is invalidated: the unit of work then runs
        the use case again on a fresh one (unit_of_work.run)."""
        lost = self.driver.closed or self.driver.info.pipeline_status != PipelineStatus.OFF
        lost = lost or self.connection.dialect.is_disconnect(error, self.driver, None)  # type: ignore[arg-type]
        if lost:
            self.connection.invalidate(error)
        return DBAPIError.instance(
            sql, None, error, psycopg.Error, hide_parameters=True, connection_invalidated=lost
        )


def statements(connection: Connection, write: bool) -> Immediate:
    """How a unit of work on this connection sends its statements; `write`: it may write.

    On PostgreSQL the unit of work's transaction is then begun by its first pipeline: call
    before the connection begins one (`Connection.begin()` then starts SQLAlchemy's
    bookkeeping only), and `release` the result before the connection is used otherwise."""
    driver = connection.connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        driver.autocommit = True
        return Pipeline(connection, driver, write)
    return Immediate(connection)


@functools.cache
def _compiled(statement: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """A Core statement's SQL for psycopg, its parameters' names in order, and the values it
    holds itself (its literals)."""
    compiled = statement.compile(dialect=_DIALECT)
    return compiled.string, tuple(compiled.positiontup or ()), compiled.params


@functools.cache
def _insert(table: Table) -> Any:
    return insert(table)


# A statement is prepared per table, column set and number of rows up to this many, so a
# connection holds a bounded number of them; more rows go as plain INSERTs of this many rows
# at most (a statement takes at most 65,535 parameters).
PREPARED_ROWS = 16
PLAIN_ROWS = 1000


@functools.lru_cache(maxsize=256)
def _insert_sql(
    table: Table, columns: tuple[str, ...], count: int
) -> tuple[str, tuple[tuple[int, str], ...], tuple[int, ...]]:
    """INSERT of `count` rows of these columns; the (row, column) of each parameter in
    order; the positions of the JSON columns' parameters."""
    where = {f"r{i}_{c}": (i, c) for i in range(count) for c in columns}
    rows: list[dict[str, Any]] = [
        {c: bindparam(f"r{i}_{c}") for c in columns} for i in range(count)
    ]
    compiled = insert(table).values(rows).compile(dialect=_DIALECT)
    order = tuple(where[name] for name in compiled.positiontup or ())
    json = _json_columns(table)
    return compiled.string, order, tuple(n for n, (_, c) in enumerate(order) if c in json)


@functools.cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


def _json(value: Any) -> Any:
    """A JSON column's value as JSON text, as SQLAlchemy's JSON type sends it (with the
    engine's serializer, app.jsoncodec)."""
    return None if value is None else jsoncodec.dumps(value)
