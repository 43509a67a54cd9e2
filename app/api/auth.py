"""Who is calling, and which businesses the key may touch (SPEC section 9).

A key is looked up in the database the first time a worker sees it, and whenever it is used
for a business it did not hold then (so a 404 for a business never comes from memory). A key
seen live before, for a business it holds, is taken at its word for the request's checks, and
is checked again by the request's first transaction, in the same message as its first statements
(`keys.check_unchecked`): a key revoked meanwhile neither reads nor writes anything, and gets
its 401 at once, without a lookup of its own on every request. An answer that no transaction
checked (a refusal before any, a request that needs none) checks the key before it leaves
(`answer_checked`), so a revoked key is told 401, never a 422 or a 404.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from app.adapters import keys
from app.adapters.keys import Credential, KeyNotLive, Principal, authenticate
from app.api.errors import Forbidden, Unauthorized, database_unavailable, problem
from app.domain.errors import NotFound
from app.service.unit_of_work import unavailable

# Keys a worker remembers as live; past this many, it starts again from none.
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
    g.presented_key = key
    known, key_hash = _known(), keys.key_hash(key)
    principal = known.get(key_hash)
    if principal is not None and business not in principal.businesses:
        principal = None  # a business the key did not hold when remembered: asked afresh
    if principal is None:
        principal = _principal(key)
        if principal is None:
            raise Unauthorized(UNKNOWN)
        if len(known) >= KNOWN_KEYS:
            known.clear()
        known[key_hash] = principal
    else:
        keys.unchecked.set(Credential(key_hash, business))
    g.key_prefix = principal.prefix
    if business not in principal.businesses:
        raise NotFound("not found")
    return principal


def require_staff(principal: Principal) -> None:
    if principal.role != "staff":
        raise Forbidden("this operation needs a staff key")


def register(app: Flask) -> None:
    """Every request starts with no credential left unchecked by an earlier one; a key a
    transaction found revoked is forgotten and answered 401; so is one found revoked by
    `answer_checked`, which runs before the request log and the metrics see the answer."""

    @app.before_request
    def _start() -> None:
        keys.unchecked.set(None)

    @app.errorhandler(KeyNotLive)
    def _not_live(_: KeyNotLive) -> Response:
        return _refused()

    app.after_request(answer_checked)


def answer_checked(response: Response) -> Response:
    """The response, unless the request's key, taken as live, no longer is: then 401."""
    if keys.unchecked.get() is None:
        return response
    keys.unchecked.set(None)
    # A key's grants are fixed when it is created; revoking is the only change they know.
    try:
        if _principal(g.presented_key) is not None:
            return response
    except (DBAPIError, SQLAlchemyTimeoutError) as error:
        # An answer needs its key confirmed; with the database gone, nothing is answered but
        # that (Flask's after-request hooks are past the error handlers).
        if not unavailable(error):
            raise
        return database_unavailable(error)
    return _refused()


def _refused() -> Response:
    keys.unchecked.set(None)
    _known().pop(keys.key_hash(g.presented_key), None)
    return problem(401, Unauthorized.code, UNKNOWN)


def _known() -> MutableMapping[bytes, Principal]:
    known: MutableMapping[bytes, Principal] = current_app.extensions["accounting"].known_keys
    return known


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
