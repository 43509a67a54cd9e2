"""The per-key limiter: a moving one-minute window on the `limits` library."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from app.api.ratelimit import RateLimiter


def test_the_window_refuses_the_request_beyond_the_allowance_with_a_wait() -> None:
    limiter = RateLimiter(3)
    assert [limiter.retry_after("key:a") for _ in range(3)] == [None, None, None]
    wait = limiter.retry_after("key:a")
    assert wait is not None and 1 <= wait <= 60
    assert limiter.retry_after("key:b") is None


def test_entries_older_than_the_window_no_longer_count(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr("time.time", lambda: clock[0])
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    limiter = RateLimiter(2)
    assert limiter.retry_after("key:a") is None
    assert limiter.retry_after("key:a") is None
    assert limiter.retry_after("key:a") is not None
    clock[0] += 61
    assert limiter.retry_after("key:a") is None
    assert limiter.retry_after("key:a") is None  # a full allowance again, not one left over
    assert limiter.retry_after("key:a") is not None


def test_threads_of_one_worker_never_enter_the_library_at_once() -> None:
    """gunicorn's threaded workers call the limiter from many threads at once, and the
    library's memory storage restarts its expiry timer unguarded: two threads counting at the
    same moment can both start it ("threads can only be started once", a 500 under load). So
    the limiter lets one thread at a time into the storage, and still counts every request."""
    limiter = RateLimiter(1_000_000)
    storage = limiter.strategy.storage
    acquire = storage.acquire_entry  # type: ignore[attr-defined]
    inside, most_inside = [0], [0]

    def slow_acquire(*args: Any, **kwargs: Any) -> bool:
        inside[0] += 1
        most_inside[0] = max(most_inside[0], inside[0])
        time.sleep(0.0005)  # long enough for every other thread to arrive
        try:
            return bool(acquire(*args, **kwargs))
        finally:
            inside[0] -= 1

    storage.acquire_entry = slow_acquire  # type: ignore[attr-defined]
    threads = [
        threading.Thread(target=lambda: [limiter.retry_after("key:a") for _ in range(20)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most_inside[0] == 1
    assert limiter.strategy.get_window_stats(limiter.item, "key:a").remaining == 1_000_000 - 160
