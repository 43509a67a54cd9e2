"""Stored answers to writes sent with an Idempotency-Key, replayed on a retry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, text

from app.adapters import batch
from app.adapters.schema import idempotency_keys


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    body: dict[str, Any]
    version: int | None


def _lock_id(business: str, key: str) -> int:
    digest = hashlib.sha256(f"{business}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class IdempotencyStore:
    """Keys are scoped per business and kept (at least 24 h; today: until purged by hand)."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def try_guard(self, business: str, key: str) -> bool:
        """Hold the key for this transaction; False while another request holds it."""
        if self.connection.dialect.name != "postgresql":
            return True  # SQLite transactions are serialized: no request is ever in flight
        acquired = self.connection.scalar(
            text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _lock_id(business, key)}
        )
        return bool(acquired)

    def find(self, business: str, key: str) -> StoredAnswer | None:
        row = self.connection.execute(
            select(
                idempotency_keys.c.request_hash,
                idempotency_keys.c.response_body,
                idempotency_keys.c.response_headers,
            )
            .where(idempotency_keys.c.business_code == business)
            .where(idempotency_keys.c.key == key)
        ).first()
        if row is None:
            return None
        return StoredAnswer(row[0], row[1], (row[2] or {}).get("version"))

    def save(
        self, business: str, key: str, request_hash: str, body: dict[str, Any], version: int
    ) -> None:
        row = {
            "business_code": business,
            "key": key,
            "request_hash": request_hash,
            "status_code": 200,
            "response_body": body,
            "response_headers": {"version": version},
        }
        if batch.driver(self.connection) is None:
            self.connection.execute(insert(idempotency_keys).values(**row))
            return
        # With the write it answers for, in the COMMIT's message (app/adapters/batch.py).
        held = batch.Batch(self.connection)
        held.insert(idempotency_keys, [row])
        held.defer()
