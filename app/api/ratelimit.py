"""Per-key rate limiting (SPEC section 9): a moving one-minute window per API key, then 429.

The window is counted per credential: a hash of the key as presented (X-Subscription-Key or
Authorization: Bearer), so nobody who merely knows a key's printed prefix can use up another
merchant's allowance. Requests without a key share one window per client address. The counters
live in the worker's memory (the `limits` library's memory storage): each gunicorn worker counts
on its own, so a key can at most reach the limit times the number of workers.

RATE_LIMIT_PER_MINUTE (environment ACCOUNTING_RATE_LIMIT_PER_MINUTE) sets the allowance; 0 turns
the limit off. Health, metrics, /openapi.yaml and /docs are never limited.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, request
from limits import RateLimitItemPerMinute, storage, strategies

from app.adapters.keys import key_hash
from app.api.auth import presented_key
from app.api.errors import RateLimited

LIMITED_PREFIX = "/accounting/"


class InlineExpiryStorage(storage.MemoryStorage):
    """The library's memory storage, its expired entries dropped inline at most once a second.

    limits' MemoryStorage starts a `threading.Timer` (10 ms) to drop expired entries whenever
    the previous one has run out, i.e. on most requests of a busy worker, and starting a
    thread cost more than everything else the limiter does (docs/performance.md). The
    counting itself is unchanged: an expired entry never counts, whenever it is dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.next_expiry = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides the library's private hook
        now = time.monotonic()
        if now >= self.next_expiry:
            self.next_expiry = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimiter:
    """At most `per_minute` requests per identity in any sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.item = RateLimitItemPerMinute(max(per_minute, 1))
        self.enabled = per_minute > 0
        self.strategy = strategies.MovingWindowRateLimiter(InlineExpiryStorage())

    def retry_after(self, identity: str) -> int | None:
        """Count one request; None when allowed, else the seconds until one is allowed again."""
        if not self.enabled or self.strategy.hit(self.item, identity):
            return None
        stats = self.strategy.get_window_stats(self.item, identity)
        return max(1, math.ceil(stats.reset_time - time.time()))


def identity() -> str:
    """Whom the request counts against: its credential's hash, or else its client address."""
    key = presented_key()
    if key:
        return "key:" + key_hash(key).hex()
    return f"addr:{request.remote_addr}"


def register(app: Flask) -> None:
    """Limit every request under /accounting/; register after the request-id hook."""
    app.extensions["ratelimit"] = RateLimiter(int(app.config["RATE_LIMIT_PER_MINUTE"]))

    @app.before_request
    def _limit() -> None:
        if not request.path.startswith(LIMITED_PREFIX):
            return
        limiter: RateLimiter = current_app.extensions["ratelimit"]
        wait = limiter.retry_after(identity())
        if wait is not None:
            raise RateLimited(
                f"more than {limiter.item.amount} requests in a minute with this key; "
                f"retry after {wait} s",
                retry_after=wait,
            )
