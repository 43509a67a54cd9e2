"""Per-key rate limiting (SPEC section 9): a moving one-minute window per API key, then 429.

The window is counted per credential: a hash of the key as presented (X-Subscription-Key or
Authorization: Bearer), so nobody who merely knows a key's printed prefix can use up another
merchant's allowance. Requests without a key share one window per client address.

Failed authentications (401) are counted per client address too: past
AUTH_FAILURES_PER_MINUTE, that address gets 429 for any key this process has not seen live,
without a lookup, until its window frees up; keys it knows keep working.

The counters live in the worker's memory (the `limits` library's memory storage), shared by
its threads: each gunicorn worker counts on its own, so the effective allowance of a key is
the limit times the number of workers (docs/operations.md says so with the figures). The
storage restarts its expiry timer without a guard, so two threads counting at the same
moment can both start it ("threads can only be started once", a 500): every call into the
library is made under one lock per limiter.

RATE_LIMIT_PER_MINUTE (environment ACCOUNTING_RATE_LIMIT_PER_MINUTE) sets the allowance; 0 turns
the limit off. Health, metrics, /openapi.yaml and /docs are never limited.
"""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, Response, current_app, request
from limits import RateLimitItemPerMinute, storage, strategies

from app.adapters.keys import key_hash
from app.api.auth import presented_key
from app.api.errors import RateLimited

LIMITED_PREFIX = "/accounting/"


class RateLimiter:
    """At most `per_minute` requests per identity in any sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.item = RateLimitItemPerMinute(max(per_minute, 1))
        self.enabled = per_minute > 0
        self.strategy = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._lock = threading.Lock()

    def retry_after(self, identity: str) -> int | None:
        """Count one request; None when allowed, else the seconds until one is allowed again."""
        if not self.enabled:
            return None
        with self._lock:
            if self.strategy.hit(self.item, identity):
                return None
        return self.wait(identity)

    def exhausted(self, identity: str) -> bool:
        """Whether the identity's window is used up (counts nothing)."""
        if not self.enabled:
            return False
        with self._lock:
            return not self.strategy.test(self.item, identity)

    def count(self, identity: str) -> None:
        if self.enabled:
            with self._lock:
                self.strategy.hit(self.item, identity)

    def wait(self, identity: str) -> int:
        with self._lock:
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
    app.extensions["ratelimit-failures"] = failures = RateLimiter(
        int(app.config.get("AUTH_FAILURES_PER_MINUTE", 30))
    )

    @app.before_request
    def _limit() -> None:
        if not request.path.startswith(LIMITED_PREFIX):
            return
        _refuse_failing_address(failures)
        limiter: RateLimiter = current_app.extensions["ratelimit"]
        wait = limiter.retry_after(identity())
        if wait is not None:
            raise RateLimited(
                f"more than {limiter.item.amount} requests in a minute with this key; "
                f"retry after {wait} s",
                retry_after=wait,
            )

    @app.after_request
    def _count_failure(response: Response) -> Response:
        if response.status_code == 401 and request.path.startswith(LIMITED_PREFIX):
            failures.count(f"addr:{request.remote_addr}")
        return response


def _refuse_failing_address(failures: RateLimiter) -> None:
    """429 for an address past its failed authentications, unless its key is known live."""
    address = f"addr:{request.remote_addr}"
    if not failures.exhausted(address):
        return
    key = presented_key()
    if key and key_hash(key) in current_app.extensions["accounting"].known_keys:
        return
    wait = failures.wait(address)
    raise RateLimited(
        f"more than {failures.item.amount} failed authentications in a minute from this "
        f"address; retry after {wait} s",
        retry_after=wait,
    )
