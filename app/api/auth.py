"""Who is calling, and which businesses the key may touch (SPEC section 9).

A key is looked up in the database (its hash) and its principal remembered by the worker for
KEY_CACHE_SECONDS; a later request with that key within that time is answered from memory.
A key's prefix, role and businesses never change after it is created, so a 404 for a business
the key does not hold is right from memory too. Revoking is the only change a key knows: a
revoked key keeps working at most KEY_CACHE_SECONDS on a worker that has just looked it up
(docs/decisions.md, docs/api.md). An unknown key is never remembered.
"""

from __future__ import annotations

from time import monotonic

from flask import current_app, g, request
from sqlalchemy.exc import DBAPIError

from app.adapters import keys
from app.adapters.keys import Principal, authenticate
from app.api.errors import Forbidden, Unauthorized
from app.domain.errors import NotFound

# How long a worker answers from memory for a key it looked up, and how many keys it
# remembers (past that many, it starts again from none).
KEY_CACHE_SECONDS = 10.0
KNOWN_KEYS = 1024
UNKNOWN = "the API key is unknown or revoked"


def presented_key() -> str | None:
    """The key from X-Subscription-Key or Authorization: Bearer."""
    key = request.headers.get("X-Subscription-Key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


def require_business(business: str) -> Principal:
    """The caller's principal; a business the key does not hold reads as nonexistent."""
    key = presented_key()
    if not key:
        raise Unauthorized("an API key is required (X-Subscription-Key or Authorization: Bearer)")
    principal = _principal(key)
    if principal is None:
        raise Unauthorized(UNKNOWN)
    g.key_prefix = principal.prefix
    if business not in principal.businesses:
        raise NotFound("not found")
    return principal


def require_staff(principal: Principal) -> None:
    if principal.role != "staff":
        raise Forbidden("this operation needs a staff key")


def _principal(key: str) -> Principal | None:
    """The key's principal, from memory while its lookup is recent, else looked up."""
    known: dict[bytes, tuple[Principal, float]] = current_app.extensions["accounting"].known_keys
    key_hash, now = keys.key_hash(key), monotonic()
    remembered = known.get(key_hash)
    if remembered is not None and now < remembered[1]:
        return remembered[0]
    principal = _looked_up(key)
    if principal is None:
        known.pop(key_hash, None)
        return None
    if len(known) >= KNOWN_KEYS:
        known.clear()
    known[key_hash] = (principal, now + KEY_CACHE_SECONDS)
    return principal


def _looked_up(key: str) -> Principal | None:
    engine = current_app.extensions["accounting"].engine
    for attempt in (1, 2):
        try:
            with engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    # One statement needs no transaction: no BEGIN, no ROLLBACK.
                    connection.execution_options(isolation_level="AUTOCOMMIT")
                return authenticate(connection, key)
        except DBAPIError as error:
            # A pooled connection the server closed (see unit_of_work.run): once more.
            if attempt == 2 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable")
