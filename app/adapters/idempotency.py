"""Stored answers to writes sent with an Idempotency-Key, replayed on a retry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select, text, tuple_

from app.adapters.batch import Immediate
from app.adapters.schema import idempotency_keys

# Rows deleted per transaction by a purge: each transaction stays short, whatever the backlog.
PURGE_CHUNK = 5000


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    body: dict[str, Any]
    version: int | None


def _lock_id(business: str, key: str) -> int:
    digest = hashlib.sha256(f"{business}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:id)")
_FIND = (
    select(
        idempotency_keys.c.request_hash,
        idempotency_keys.c.response_body,
        idempotency_keys.c.response_headers,
    )
    .where(idempotency_keys.c.business_code == bindparam("business"))
    .where(idempotency_keys.c.key == bindparam("key"))
)


class IdempotencyStore:
    """Keys are scoped per business and kept at least 24 h (`purge`, docs/operations.md)."""

    def __init__(self, statements: Immediate):
        # A unit of work's way to the database (app/adapters/batch.py).
        self.statements = statements

    def try_guard(self, business: str, key: str) -> bool:
        """Hold the key for this transaction; False while another request holds it."""
        if self.statements.connection.dialect.name != "postgresql":
            return True  # SQLite transactions are serialized: no request is ever in flight
        [rows] = self.statements.rows((_TRY_LOCK, {"id": _lock_id(business, key)}))
        return bool(rows[0][0])

    def find(self, business: str, key: str) -> StoredAnswer | None:
        [rows] = self.statements.rows((_FIND, {"business": business, "key": key}))
        if not rows:
            return None
        row = rows[0]
        return StoredAnswer(row[0], row[1], (row[2] or {}).get("version"))

    def save(
        self, business: str, key: str, request_hash: str, body: dict[str, Any], version: int | None
    ) -> None:
        """Stored with the write it answers for (on PostgreSQL, in the COMMIT's round trip)."""
        row = {
            "business_code": business,
            "key": key,
            "request_hash": request_hash,
            "status_code": 200,
            "response_body": body,
            "response_headers": {"version": version},
            "created_at": datetime.now(UTC),
        }
        self.statements.insert(idempotency_keys, [row])


def purge(
    engine: Engine,
    before: datetime,
    chunk: int = PURGE_CHUNK,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Delete the answers stored before `before`, a chunk per transaction, until none is
    left or `should_stop()`; returns how many.

    A request replaying one of them meanwhile either reads it first or finds nothing and is
    taken as new, which the contract allows once a key is older than 24 hours."""
    keys = idempotency_keys
    oldest = select(keys.c.business_code, keys.c.key).where(keys.c.created_at < before).limit(chunk)
    statement = delete(keys).where(tuple_(keys.c.business_code, keys.c.key).in_(oldest))
    purged = 0
    while True:
        with engine.begin() as connection:
            deleted = int(connection.execute(statement).rowcount or 0)
        purged += deleted
        if deleted < chunk or should_stop():
            return purged
