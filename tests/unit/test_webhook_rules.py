"""Webhook rules without a database: where events may go, how they are signed, when the
relay tries again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from app.adapters.events import Endpoint, StoredEvent
from app.service.relay import Settings, backoff, signed
from app.service.webhooks import new_secret, url_problems


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://erp.example.com/hooks", None),
        ("https://erp.example.com:8443/hooks?source=accounting", None),
        ("http://127.0.0.1:8080/hooks", None),
        ("http://localhost/hooks", None),
        ("http://[::1]:9/hooks", None),
        ("http://erp.example.com/hooks", "https-required"),
        ("http://10.0.0.5/hooks", "https-required"),
        ("ftp://erp.example.com/hooks", "invalid-url"),
        ("https://user:pw@erp.example.com/hooks", "invalid-url"),
        ("https://erp.example.com:99999/hooks", "invalid-url"),
        ("erp.example.com/hooks", "invalid-url"),
        ("https://[::1/hooks", "invalid-url"),
    ],
)
def test_events_go_over_https_except_to_this_machine(url: str, code: str | None) -> None:
    assert [p.code for p in url_problems(url)] == ([code] if code else [])


def endpoint(secret: str) -> Endpoint:
    now = datetime.now(UTC)
    return Endpoint("1000", "ep-1", "https://erp.example.com", None, secret, "active", 0,
                    None, None, None, now)  # fmt: skip


def test_a_delivery_is_signed_so_the_receiver_can_verify_it_with_standard_webhooks() -> None:
    secret = new_secret()
    stored = StoredEvent("1000", "evt-1", "invoiceCreated", {"orderReference": "O1"},
                         datetime(2026, 12, 4, tzinfo=UTC), 7)  # fmt: skip
    body, headers = signed(endpoint(secret), stored, datetime.now(UTC))

    verified = Webhook(secret).verify(body, headers)

    assert headers["webhook-id"] == "evt-1"
    assert verified["type"] == "invoiceCreated" and verified["data"] == {"orderReference": "O1"}
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(new_secret()).verify(body, headers)


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap() -> None:
    settings = Settings(base_delay_s=5, max_delay_s=3600)
    delays = [backoff(n, settings) for n in range(1, 12)]

    assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10 and 40 <= delays[4] <= 80
    assert all(1800 <= d <= 3600 for d in delays[10:])
    assert len({backoff(3, settings) for _ in range(20)}) > 1  # jitter: not all alike


def test_retries_reach_past_a_day_before_an_endpoint_is_disabled() -> None:
    settings = Settings()
    waited, attempts = timedelta(), 0
    while waited.total_seconds() < settings.give_up_after_s:
        attempts += 1
        waited += timedelta(seconds=backoff(attempts, settings))
    assert settings.give_up_after_s >= 24 * 3600 and attempts >= 20
