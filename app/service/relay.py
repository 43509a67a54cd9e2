"""`accounting relay`: deliver the outbox's events to the merchants' webhooks.

Several relays may run. A relay claims one endpoint at a time with its row lock (`FOR UPDATE
SKIP LOCKED`) and holds it while it sends that endpoint's next event, so two relays never send
to one endpoint at once and an endpoint's events go in feed order. The endpoint's cursor moves
in the transaction that holds the lock, only after a 2xx: a relay killed mid-delivery loses
its connection, PostgreSQL drops the lock, and the next relay sends the same event again with
the same webhook-id (at least once). A failure puts only that endpoint back, with exponential
backoff and jitter; other endpoints are served meanwhile. An endpoint that has failed for
`give_up_after` is disabled, and says so (its status, reason, and a log line).

On SQLite (one process, writes serialized) the claim and the outcome are two short
transactions around the POST, so API writes never wait for a webhook: run one relay there.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Connection, Engine
from standardwebhooks import Webhook

from app import jsoncodec
from app.adapters import events as store
from app.adapters import webhook_http
from app.adapters.event_data import event_type
from app.adapters.events import Endpoint, StoredEvent
from app.adapters.webhook_http import Answer
from app.service.webhooks import present

log = logging.getLogger("app.relay")
MEASURE_EVERY_S = 5.0  # the backlog gauge is counted this often


@dataclass(frozen=True)
class Settings:
    """How the relay retries and waits."""

    timeout_s: float = 5.0  # each network wait of one POST
    base_delay_s: float = 5.0  # the first retry comes after about this
    max_delay_s: float = 3600.0  # retries never wait longer than this
    give_up_after_s: float = 24 * 3600.0  # failing this long (at least 24 h) disables
    poll_s: float = 0.5  # idle: look again after this


class Metrics:
    """Backlog, delivery latency, failures per endpoint; a registry of the relay's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.backlog = Gauge(
            "webhook_backlog_events",
            "Events not yet numbered (unnumbered) and not yet delivered per endpoint (undelivered)",
            ["kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "webhook_delivery_latency_seconds",
            "From an event's commit to its delivery",
            buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
            registry=self.registry,
        )
        self.failures = Counter(
            "webhook_delivery_failures_total",
            "Failed delivery attempts",
            ["business", "endpoint"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "webhook_deliveries_total", "Delivered events", registry=self.registry
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the next attempt after `attempts` failures: doubling, capped, with
    jitter (a half to the whole of it), so endpoints that failed together retry apart."""
    delay = min(settings.base_delay_s * 2 ** min(attempts - 1, 30), settings.max_delay_s)
    return delay * random.uniform(0.5, 1.0)


def signed(ep: Endpoint, stored: StoredEvent, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of one attempt: the webhook-id is the
    event's id on every attempt; the timestamp and signature are the attempt's."""
    body = jsoncodec.dumps(present(stored))
    signature = Webhook(ep.secret).sign(stored.event_id, now, body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "accounting-relay/1",
        "webhook-id": stored.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode("utf-8"), headers


class Relay:
    """Numbers committed events and delivers them, one endpoint at a time per call."""

    def __init__(self, engine: Engine, settings: Settings | None = None):
        self.engine = engine
        self.settings = settings or Settings()
        self.metrics = Metrics()
        self.hold = engine.dialect.name == "postgresql"

    def number(self) -> int:
        """Give feed positions to what has committed, business by business."""
        numbered = 0
        with self.engine.connect() as connection:
            with connection.begin():
                waiting = store.businesses_waiting(connection)
            for business in waiting:
                with connection.begin():
                    numbered += store.sequence(connection, business)
        return numbered

    def measure(self) -> None:
        with self.engine.connect() as connection, connection.begin():
            unnumbered, undelivered = store.backlog(connection)
        self.metrics.backlog.labels("unnumbered").set(unnumbered)
        self.metrics.backlog.labels("undelivered").set(undelivered)

    def deliver_one(self) -> bool:
        """Send the next event of one endpoint that has one due; False when none has."""
        # Leaving the connection (a return, an error) rolls back what was not committed.
        with self.engine.connect() as connection:
            transaction = connection.begin()
            ep = store.claim_endpoint(connection, _now())
            if ep is None:
                return False
            stored, replay = self._next(connection, ep)
            if stored is not None:
                if not self.hold:
                    transaction.commit()
                body, headers = signed(ep, stored, _now())
                answer = webhook_http.post(ep.url, body, headers, self.settings.timeout_s)
                if not self.hold:
                    transaction = connection.begin()
                self._record(connection, ep, stored, replay, answer)
            transaction.commit()
        return True

    def _next(self, connection: Connection, ep: Endpoint) -> tuple[StoredEvent | None, bool]:
        """A replay staff asked for, else the next event past the cursor of a type the
        endpoint takes; events of other types are passed over (the cursor moves)."""
        replay = store.next_replay(connection, ep)
        if replay is not None:
            return replay, True
        batch = store.feed(connection, ep.business, ep.cursor, 100, None)
        for stored in batch:
            if ep.event_types is None or event_type(stored.topic) in ep.event_types:
                return stored, False
        if batch:
            store.change_endpoint(connection, ep, cursor=batch[-1].position)
        return None, False

    def _record(
        self,
        connection: Connection,
        ep: Endpoint,
        stored: StoredEvent,
        replay: bool,
        answer: Answer,
    ) -> None:
        now = _now()
        current = store.delivery(connection, ep, stored.event_id)
        attempts = (current["attempts"] if current else 0) + 1
        values: dict[str, Any] = {
            "business_code": ep.business,
            "endpoint_id": ep.endpoint_id,
            "event_id": stored.event_id,
            "position": stored.position,
            "topic": stored.topic,
            "attempts": attempts,
            "last_status_code": answer.status,
            "last_error": answer.error,
            "first_attempt_at": (current or {}).get("first_attempt_at") or now,
            "last_attempt_at": now,
        }
        if answer.delivered:
            self._delivered(connection, ep, stored, replay, values, current is not None)
        else:
            self._failed(connection, ep, replay, values, current is not None)

    def _delivered(
        self,
        connection: Connection,
        ep: Endpoint,
        stored: StoredEvent,
        replay: bool,
        values: dict[str, Any],
        known: bool,
    ) -> None:
        now = values["last_attempt_at"]
        occurred = _aware(stored.created_at) or now
        latency = max((now - occurred).total_seconds(), 0.0)
        values.update(status=store.DELIVERED, delivered_at=now, latency_ms=int(latency * 1000))
        store.save_delivery(connection, values, known)
        moved = {} if replay else {"cursor": stored.position}
        # next_attempt_at: when it was served last, so the least recently served goes first.
        store.change_endpoint(connection, ep, next_attempt_at=now, failing_since=None, **moved)
        self.metrics.delivered.inc()
        self.metrics.latency.observe(latency)

    def _failed(
        self,
        connection: Connection,
        ep: Endpoint,
        replay: bool,
        values: dict[str, Any],
        known: bool,
    ) -> None:
        now = values["last_attempt_at"]
        self.metrics.failures.labels(ep.business, ep.endpoint_id).inc()
        since = _aware(ep.failing_since) or now
        if (now - since).total_seconds() >= self.settings.give_up_after_s:
            values["status"] = store.ABANDONED
            store.save_delivery(connection, values, known)
            reason = (
                f"disabled {now:%Y-%m-%d %H:%M} UTC: every delivery failed since "
                f"{since:%Y-%m-%d %H:%M} UTC ({values['attempts']} attempts of event "
                f"{values['event_id']}); last: {values['last_error']}"
            )[:300]
            store.change_endpoint(connection, ep, status=store.DISABLED, disabled_reason=reason)
            log.warning(
                "webhook endpoint disabled",
                extra={"business": ep.business, "endpoint": ep.endpoint_id, "reason": reason},
            )
            return
        values["status"] = store.REPLAY if replay else store.FAILING
        store.save_delivery(connection, values, known)
        retry = now + timedelta(seconds=backoff(values["attempts"], self.settings))
        store.change_endpoint(connection, ep, next_attempt_at=retry, failing_since=since)

    def run(self, stop: threading.Event, threads: int) -> None:
        """Deliver until `stop` is set: `threads` senders, each its own endpoint at a time,
        so one slow endpoint holds up no other; this thread numbers and measures."""
        senders = [
            threading.Thread(target=self._send_until, args=(stop,), name=f"relay-{n}")
            for n in range(threads)
        ]
        for thread in senders:
            thread.start()
        measured = -MEASURE_EVERY_S
        try:
            while not stop.is_set():
                self._guarded(self.number)
                if time.monotonic() - measured >= MEASURE_EVERY_S:
                    self._guarded(self.measure)
                    measured = time.monotonic()
                stop.wait(self.settings.poll_s)
        finally:
            stop.set()
            for thread in senders:
                thread.join()

    def _send_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._guarded(self.deliver_one):
                stop.wait(self.settings.poll_s)

    def _guarded(self, step: Callable[[], Any]) -> Any:
        """A step; a failure (the database away) is logged and the step tried again later."""
        try:
            return step()
        except Exception as error:
            log.warning("relay step failed", extra={"error": type(error).__name__})
            return False
