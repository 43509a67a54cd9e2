"""The per-key limiter: a moving window that starts no thread per request."""

from __future__ import annotations

import threading
import time

import pytest

from app.api.ratelimit import RateLimiter


def test_the_window_refuses_the_request_beyond_the_allowance_with_a_wait() -> None:
    limiter = RateLimiter(3)
    assert [limiter.retry_after("key:a") for _ in range(3)] == [None, None, None]
    wait = limiter.retry_after("key:a")
    assert wait is not None and 1 <= wait <= 60
    assert limiter.retry_after("key:b") is None


def test_requests_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = RateLimiter(1_000)
    started: list[object] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread))
    for n in range(5):
        time.sleep(0.015)  # longer than the library's own 10 ms expiry timer
        limiter.retry_after(f"key:{n % 2}")
    assert started == []


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
    [events] = limiter.strategy.storage.events.values()  # type: ignore[attr-defined]
    assert len(events) == 1  # the two old entries were dropped, not just ignored
