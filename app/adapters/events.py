"""The SQL of the event feed and the webhooks: feed positions, endpoints, deliveries.

An event gets its place in its business's feed (`position`) only after its transaction has
committed: `sequence` numbers the committed events that have none yet, in the order they were
inserted, under a lock per business, so positions grow in the order events become visible.
A reader that has seen position p has seen every event that will ever hold a position below
p: a transaction that commits late is numbered after everything already numbered, never behind
a cursor (docs/decisions.md, "The event feed").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select
from sqlalchemy import update as sql_update

from app.adapters import mapper, schema

outbox, endpoints, deliveries = schema.outbox, schema.webhook_endpoints, schema.webhook_deliveries
# The first key of the advisory locks that serialize numbering per business (the second is
# the business's hash); idempotency keys lock with one bigint key, a space of its own.
SEQUENCER_LOCK = 7_000_001
ACTIVE, DISABLED = "active", "disabled"
DELIVERED, FAILING, ABANDONED, REPLAY = "delivered", "failing", "abandoned", "replay"


@dataclass(frozen=True)
class StoredEvent:
    """An outbox row with its feed position."""

    business: str
    event_id: str
    topic: str
    payload: dict[str, Any]
    created_at: datetime
    position: int


@dataclass(frozen=True)
class Endpoint:
    """A webhook subscription as stored."""

    business: str
    endpoint_id: str
    url: str
    event_types: list[str] | None
    secret: str
    status: str
    cursor: int
    next_attempt_at: datetime | None
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime


def _business_lock_key(business: str) -> int:
    digest = hashlib.sha256(business.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _lock_numbering(connection: Connection, business: str) -> bool:
    """Hold the business's numbering for the transaction; False if another holds it."""
    if connection.dialect.name != "postgresql":
        return True  # SQLite: the transaction holds the write lock already
    lock = func.pg_try_advisory_xact_lock(SEQUENCER_LOCK, _business_lock_key(business))
    return bool(connection.execute(select(lock)).scalar())


def sequence(connection: Connection, business: str, limit: int = 1000) -> int:
    """Give feed positions to committed events of a business that have none, in the order
    they were inserted; how many got one (0 when another transaction is numbering)."""
    if not _lock_numbering(connection, business):
        return 0
    waiting = connection.execute(
        select(outbox.c.event_id)
        .where(outbox.c.business_code == business, outbox.c.position.is_(None))
        .order_by(outbox.c.seq, outbox.c.event_id)
        .limit(limit)
    ).all()
    if not waiting:
        return 0
    last = last_position(connection, business)
    connection.execute(
        mapper.update_statement(outbox, ("position",)),
        [
            {"key_business_code": business, "key_event_id": row[0], "position": last + n}
            for n, row in enumerate(waiting, start=1)
        ],
    )
    return len(waiting)


def businesses_waiting(connection: Connection, limit: int = 100) -> list[str]:
    """Businesses with committed events not yet numbered."""
    rows = connection.execute(
        select(outbox.c.business_code)
        .where(outbox.c.position.is_(None))
        .group_by(outbox.c.business_code)
        .limit(limit)
    )
    return [row[0] for row in rows]


_EVENT_COLUMNS = (
    outbox.c.business_code,
    outbox.c.event_id,
    outbox.c.topic,
    outbox.c.payload,
    outbox.c.created_at,
    outbox.c.position,
)


def feed(
    connection: Connection, business: str, after: int, limit: int, topics: list[str] | None
) -> list[StoredEvent]:
    """Numbered events of a business after a position, in feed order."""
    query = select(*_EVENT_COLUMNS).where(
        outbox.c.business_code == business, outbox.c.position > after
    )
    if topics is not None:
        query = query.where(outbox.c.topic.in_(topics))
    rows = connection.execute(query.order_by(outbox.c.position).limit(limit))
    return [StoredEvent(*row) for row in rows]


def last_position(connection: Connection, business: str) -> int:
    """The highest position numbered in a business's feed (0 when none is)."""
    query = select(func.coalesce(func.max(outbox.c.position), 0)).where(
        outbox.c.business_code == business
    )
    return int(connection.execute(query).scalar_one())


def events_between(
    connection: Connection, business: str, start: datetime, end: datetime, limit: int
) -> list[StoredEvent]:
    """Numbered events of a business that occurred in [start, end), in feed order."""
    query = (
        select(*_EVENT_COLUMNS)
        .where(
            outbox.c.business_code == business,
            outbox.c.position.is_not(None),
            outbox.c.created_at >= start,
            outbox.c.created_at < end,
        )
        .order_by(outbox.c.position)
        .limit(limit)
    )
    return [StoredEvent(*row) for row in connection.execute(query)]


def event(connection: Connection, business: str, event_id: str) -> StoredEvent | None:
    query = select(*_EVENT_COLUMNS).where(
        outbox.c.business_code == business,
        outbox.c.event_id == event_id,
        outbox.c.position.is_not(None),
    )
    row = connection.execute(query).first()
    return StoredEvent(*row) if row else None


# --- endpoints -------------------------------------------------------------------------------


def add_endpoint(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(endpoints), [values])


def endpoints_of(connection: Connection, business: str) -> list[Endpoint]:
    rows = connection.execute(
        select(endpoints)
        .where(endpoints.c.business_code == business)
        .order_by(endpoints.c.created_at, endpoints.c.endpoint_id)
    )
    return [Endpoint(*row) for row in rows]


def endpoint(connection: Connection, business: str, endpoint_id: str) -> Endpoint | None:
    row = connection.execute(
        select(endpoints).where(
            endpoints.c.business_code == business, endpoints.c.endpoint_id == endpoint_id
        )
    ).first()
    return Endpoint(*row) if row else None


def remove_endpoint(connection: Connection, business: str, endpoint_id: str) -> None:
    # Its deliveries go with it (ON DELETE CASCADE).
    connection.execute(
        delete(endpoints).where(
            endpoints.c.business_code == business, endpoints.c.endpoint_id == endpoint_id
        )
    )


def claim_endpoint(connection: Connection, now: datetime) -> Endpoint | None:
    """An active endpoint due for a delivery (an event past its cursor, or a replay asked),
    its row locked for the transaction; one another relay holds is skipped."""
    e = endpoints
    newer = select(outbox.c.event_id).where(
        outbox.c.business_code == e.c.business_code, outbox.c.position > e.c.cursor
    )
    replay = select(deliveries.c.event_id).where(
        deliveries.c.business_code == e.c.business_code,
        deliveries.c.endpoint_id == e.c.endpoint_id,
        deliveries.c.status == REPLAY,
    )
    query = (
        select(e)
        .where(
            e.c.status == ACTIVE,
            or_(e.c.next_attempt_at.is_(None), e.c.next_attempt_at <= now),
            or_(exists(newer), exists(replay)),
        )
        .order_by(e.c.next_attempt_at.is_not(None), e.c.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True, of=e)
    )
    row = connection.execute(query).first()
    return Endpoint(*row) if row else None


def next_replay(connection: Connection, ep: Endpoint) -> StoredEvent | None:
    """The earliest event staff asked to send again to this endpoint."""
    d = deliveries
    query = (
        select(*_EVENT_COLUMNS)
        .join(
            outbox,
            and_(outbox.c.business_code == d.c.business_code, outbox.c.event_id == d.c.event_id),
        )
        .where(d.c.business_code == ep.business, d.c.endpoint_id == ep.endpoint_id)
        .where(d.c.status == REPLAY)
        .order_by(d.c.position)
        .limit(1)
    )
    row = connection.execute(query).first()
    return StoredEvent(*row) if row else None


def change_endpoint(connection: Connection, ep: Endpoint, **values: Any) -> None:
    connection.execute(
        sql_update(endpoints)
        .where(endpoints.c.business_code == ep.business, endpoints.c.endpoint_id == ep.endpoint_id)
        .values(**values)
    )


# --- deliveries ------------------------------------------------------------------------------


def delivery(connection: Connection, ep: Endpoint, event_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(deliveries).where(
            deliveries.c.business_code == ep.business,
            deliveries.c.endpoint_id == ep.endpoint_id,
            deliveries.c.event_id == event_id,
        )
    ).first()
    return dict(row._mapping) if row else None


def save_delivery(connection: Connection, values: dict[str, Any], exists_: bool) -> None:
    """Insert or update a delivery's row (under its endpoint's lock)."""
    if not exists_:
        connection.execute(insert(deliveries), [values])
        return
    keys = ("business_code", "endpoint_id", "event_id")
    connection.execute(
        sql_update(deliveries)
        .where(*(deliveries.c[k] == values[k] for k in keys))
        .values(**{k: v for k, v in values.items() if k not in keys})
    )


def deliveries_of(
    connection: Connection, business: str, endpoint_id: str, limit: int
) -> list[dict[str, Any]]:
    """An endpoint's deliveries, the latest events first."""
    rows = connection.execute(
        select(deliveries)
        .where(deliveries.c.business_code == business, deliveries.c.endpoint_id == endpoint_id)
        .order_by(deliveries.c.position.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def ask_replay(connection: Connection, ep: Endpoint, found: Sequence[StoredEvent]) -> None:
    """Mark these events to be sent again to the endpoint (before anything newer)."""
    for stored in found:
        current = delivery(connection, ep, stored.event_id)
        values = {
            "business_code": ep.business,
            "endpoint_id": ep.endpoint_id,
            "event_id": stored.event_id,
            "position": stored.position,
            "topic": stored.topic,
            "status": REPLAY,
            "attempts": current["attempts"] if current else 0,
        }
        save_delivery(connection, values, current is not None)


def backlog(connection: Connection) -> tuple[int, int]:
    """Events not yet numbered, and events numbered but not yet delivered to an active
    endpoint (counted per endpoint)."""
    waiting = connection.execute(
        select(func.count()).select_from(outbox).where(outbox.c.position.is_(None))
    ).scalar_one()
    behind = connection.execute(
        select(func.count())
        .select_from(outbox)
        .join(endpoints, endpoints.c.business_code == outbox.c.business_code)
        .where(endpoints.c.status == ACTIVE, outbox.c.position > endpoints.c.cursor)
    ).scalar_one()
    return int(waiting), int(behind)
