"""Who is calling, and which businesses the key may touch (SPEC section 9)."""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.exc import DBAPIError

from app.adapters.keys import Principal, authenticate
from app.api.errors import Forbidden, Unauthorized
from app.domain.errors import NotFound


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
        raise Unauthorized("the API key is unknown or revoked")
    g.key_prefix = principal.prefix
    if business not in principal.businesses:
        raise NotFound("not found")
    return principal


def _principal(key: str) -> Principal | None:
    engine = current_app.extensions["accounting"].engine
    for attempt in (1, 2):
        try:
            # One statement needs no transaction. On PostgreSQL it goes straight to the
            # driver, which autocommits (app/adapters/batch.py): no BEGIN, no ROLLBACK.
            with engine.connect() as connection:
                return authenticate(connection, key)
        except DBAPIError as error:
            # A pooled connection the server closed (see unit_of_work.run): once more.
            if attempt == 2 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def require_staff(principal: Principal) -> None:
    if principal.role != "staff":
        raise Forbidden("this operation needs a staff key")
