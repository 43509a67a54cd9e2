"""The event feed and webhook subscriptions: each call one transaction (docs/api.md,
"Events")."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from app.adapters import events as store
from app.adapters.event_data import TYPES, envelope, stored_topics
from app.adapters.events import Endpoint, StoredEvent
from app.domain.errors import FieldError, NotFound, StateConflict, field_errors
from app.service.orders import Idempotency, Outcome, Written, idempotent
from app.service.unit_of_work import UnitOfWork, run

T = TypeVar("T")
MAX_ENDPOINTS = 20  # per business
MAX_REPLAY = 10_000  # events one replay may ask for
LOOPBACK_NAMES = ("localhost",)


def new_secret() -> str:
    """A Standard Webhooks signing secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problems(url: str) -> list[FieldError]:
    """HTTPS, or HTTP to this machine only (a receiver under test); no credentials in it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises for a port that is no number
    except ValueError:
        return [FieldError("url", "invalid-url", "not a URL")]
    if parts.scheme not in ("https", "http") or not host:
        return [FieldError("url", "invalid-url", "an absolute https:// URL")]
    if parts.username or parts.password:
        return [FieldError("url", "invalid-url", "no user or password in the URL")]
    if parts.scheme == "http" and not _loopback(host):
        return [FieldError("url", "https-required", "https:// outside this machine")]
    return []


def type_problems(types: list[str] | None, field: str) -> list[FieldError]:
    return [
        FieldError(f"{field}[{n}]", "unknown-event-type", f"one of {', '.join(TYPES)}")
        for n, name in enumerate(types or [])
        if name not in TYPES
    ]


def present(stored: StoredEvent) -> dict[str, Any]:
    return envelope(
        stored.event_id, stored.topic, stored.business, stored.created_at, stored.payload
    )


def _found(endpoint: Endpoint | None, endpoint_id: str) -> Endpoint:
    if endpoint is None:
        raise NotFound(f"webhook {endpoint_id} not found")
    return endpoint


class Webhooks:
    """The feed, subscriptions, and staff's view of deliveries."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory

    def _write(self, act: Callable[[UnitOfWork], T]) -> T:
        def use_case(uow: UnitOfWork) -> T:
            result = act(uow)
            uow.commit()
            return result

        return run(self.session_factory, use_case)

    def feed(
        self, business: str, after: int, limit: int, types: list[str] | None
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the feed: the events after the cursor in feed order, and the cursor to
        ask after next; numbers what has committed first."""
        problems = type_problems(types, "types")
        if problems:
            raise field_errors(*problems)
        topics = stored_topics(types) if types else None

        def act(uow: UnitOfWork) -> list[StoredEvent]:
            store.sequence(uow.connection, business)
            return store.feed(uow.connection, business, after, limit, topics)

        found = self._write(act)
        return [present(e) for e in found], found[-1].position if found else after

    def subscribe(
        self,
        business: str,
        url: str,
        types: list[str] | None,
        key: Idempotency | None,
        answer: Callable[[Endpoint, str], dict[str, Any]],
    ) -> Outcome:
        """A new endpoint, sent what happens from now on; its secret is answered once (and
        to a retry under the same Idempotency-Key)."""
        problems = url_problems(url) + type_problems(types, "event_types")
        if problems:
            raise field_errors(*problems)
        secret = new_secret()

        def act(uow: UnitOfWork) -> Written:
            connection = uow.connection
            if len(store.endpoints_of(connection, business)) >= MAX_ENDPOINTS:
                raise StateConflict(
                    f"a business may have {MAX_ENDPOINTS} webhooks", code="too-many-webhooks"
                )
            store.sequence(connection, business)
            endpoint_id = str(uuid.uuid4())
            values = {
                "business_code": business,
                "endpoint_id": endpoint_id,
                "url": url,
                "event_types": sorted(set(types)) if types else None,
                "secret": secret,
                "status": store.ACTIVE,
                "cursor": store.last_position(connection, business),
                "created_at": datetime.now(UTC),
            }
            store.add_endpoint(connection, values)
            found = store.endpoint(connection, business, endpoint_id)
            assert found is not None
            return answer(found, secret), None, True

        return run(self.session_factory, idempotent(business, key, act))

    def endpoints(self, business: str) -> list[Endpoint]:
        return self._write(lambda uow: store.endpoints_of(uow.connection, business))

    def endpoint(self, business: str, endpoint_id: str) -> Endpoint:
        found = self._write(lambda uow: store.endpoint(uow.connection, business, endpoint_id))
        return _found(found, endpoint_id)

    def unsubscribe(self, business: str, endpoint_id: str) -> Endpoint:
        """Remove an endpoint and its deliveries; answers it as it was."""

        def act(uow: UnitOfWork) -> Endpoint:
            found = _found(store.endpoint(uow.connection, business, endpoint_id), endpoint_id)
            store.remove_endpoint(uow.connection, business, endpoint_id)
            return found

        return self._write(act)

    def deliveries(
        self, business: str, endpoint_id: str, limit: int
    ) -> tuple[Endpoint, list[dict[str, Any]]]:
        """An endpoint and its latest deliveries (staff)."""

        def act(uow: UnitOfWork) -> tuple[Endpoint | None, list[dict[str, Any]]]:
            found = store.endpoint(uow.connection, business, endpoint_id)
            rows = store.deliveries_of(uow.connection, business, endpoint_id, limit)
            return found, rows

        found, rows = self._write(act)
        return _found(found, endpoint_id), rows

    def replay(
        self,
        business: str,
        endpoint_id: str,
        event_id: str | None,
        period: tuple[datetime, datetime] | None,
        key: Idempotency | None,
        answer: Callable[[int], dict[str, Any]],
    ) -> Outcome:
        """Send one event, or those of a period, again to an endpoint (staff); an endpoint
        disabled after failures is enabled again. Answers how many events were asked for."""

        def act(uow: UnitOfWork) -> Written:
            connection = uow.connection
            ep = _found(store.endpoint(connection, business, endpoint_id), endpoint_id)
            if event_id is not None:
                one = store.event(connection, business, event_id)
                if one is None:
                    raise NotFound(f"event {event_id} not found")
                found = [one]
            else:
                assert period is not None
                found = store.events_between(connection, business, *period, MAX_REPLAY)
            store.ask_replay(connection, ep, found)
            store.change_endpoint(
                connection,
                ep,
                status=store.ACTIVE,
                disabled_reason=None,
                next_attempt_at=None,
                failing_since=None,
            )
            return answer(len(found)), None, True

        return run(self.session_factory, idempotent(business, key, act))
