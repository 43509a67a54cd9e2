"""The per-key limiter: a moving one-minute window on the `limits` library."""

from __future__ import annotations

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
