"""API keys: random, prefixed, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from app.adapters.schema import api_keys

KEY_PREFIX = "aas_"
ROLES = ("merchant", "staff")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's prefix, role and the businesses it may touch."""

    prefix: str
    role: str
    businesses: frozenset[str]


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


_GRANTS = (
    select(api_keys.c.business_code, api_keys.c.role)
    .where(api_keys.c.key_hash == bindparam("key_hash"))
    .where(api_keys.c.revoked_at.is_(None))
)


def authenticate(connection: Session | Connection, key: str) -> Principal | None:
    """The principal of a live key, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    rows = connection.execute(_GRANTS, {"key_hash": key_hash(key)}).all()
    if not rows:
        return None
    return Principal(key[:12], rows[0][1], frozenset(r[0] for r in rows))
