"""API keys: random, prefixed, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, literal_column, select, update
from sqlalchemy.orm import Session

from app.adapters import batch
from app.adapters.schema import api_keys

KEY_PREFIX = "aas_"
ROLES = ("merchant", "staff")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's prefix, role and the businesses it may touch."""

    prefix: str
    role: str
    businesses: frozenset[str]


@dataclass(frozen=True)
class Credential:
    """A key presented for a business, taken as live from an earlier answer: still to be
    checked against the database, by the request's first transaction (`check_unchecked`)."""

    key_hash: bytes
    business: str


class KeyNotLive(Exception):
    """The key of a request was revoked since it was last looked up (HTTP 401)."""


# The request's credential still to be checked, if any. Set by the API for a key it has seen
# live before; a unit of work checks it in its transaction's first statement (and clears it),
# so a revoked key never writes or reads, without a lookup of its own on every request.
unchecked: ContextVar[Credential | None] = ContextVar("unchecked_credential", default=None)


def key_hash(key: str) -> bytes:
    # Keys carry 256 random bits, so a plain hash cannot be brute-forced; no salt needed.
    return hashlib.sha256(key.encode()).digest()


def create_key(session: Session, businesses: list[str], role: str, name: str | None) -> str:
    """Create a key for the businesses and return it; it is never retrievable again."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = str(uuid.uuid4())
    session.execute(
        insert(api_keys),
        [
            {
                "business_code": b,
                "key_id": key_id,
                "prefix": key[:12],
                "key_hash": key_hash(key),
                "role": role,
                "name": name,
            }
            for b in sorted(set(businesses))
        ],
    )
    return key


def revoke_key(session: Session, prefix: str) -> int:
    """Revoke every grant of the key starting with prefix; returns how many."""
    result = session.execute(
        update(api_keys)
        .where(api_keys.c.prefix == prefix[:12])
        .where(api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@functools.cache
def _grants_query() -> Any:
    return (
        select(api_keys.c.business_code, api_keys.c.role)
        .where(api_keys.c.key_hash == bindparam("key_hash"))
        .where(api_keys.c.revoked_at.is_(None))
    )


@functools.cache
def _grants_statement() -> batch.Prepared:
    return batch.Prepared.of("aas_key_grants", _grants_query())


@functools.cache
def _live_query() -> Any:
    return (
        select(literal_column("1"))
        .select_from(api_keys)
        .where(api_keys.c.business_code == bindparam("business"))
        .where(api_keys.c.key_hash == bindparam("key_hash"))
        .where(api_keys.c.revoked_at.is_(None))
    )


@functools.cache
def live_statement() -> batch.Prepared:
    """One row while the key still holds the business (primary key lookup)."""
    return batch.Prepared.of("aas_key_live", _live_query())


def check_unchecked(connection: Connection) -> None:
    """Check the request's unchecked credential, if any, in the transaction just begun on the
    connection: on PostgreSQL in the transaction's first message (a guard: no round trip of
    its own), elsewhere now. A key no longer live raises KeyNotLive; a live one is checked."""
    credential = unchecked.get()
    if credential is None:
        return
    params = {"business": credential.business, "key_hash": credential.key_hash}
    if batch.driver(connection) is None:
        if connection.execute(_live_query(), params).first() is None:
            raise KeyNotLive()
        _checked()
        return
    batch.guard(connection, batch.Guard(live_statement(), params, KeyNotLive, _checked))


def _checked() -> None:
    unchecked.set(None)


def authenticate(connection: Session | Connection, key: str) -> Principal | None:
    """The principal of a live key, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    rows: Sequence[Any]
    if isinstance(connection, Connection) and batch.driver(connection) is not None:
        # On PostgreSQL, a statement prepared once per connection (app/adapters/batch.py).
        rows = batch.query(connection, _grants_statement(), key_hash=key_hash(key))
    else:
        rows = connection.execute(_grants_query(), {"key_hash": key_hash(key)}).all()
    if not rows:
        return None
    return Principal(key[:12], rows[0][1], frozenset(r[0] for r in rows))
