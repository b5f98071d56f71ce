"""Where webhooks may not go, checked with the allow setting off (the default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.webhooks.delivery import RetryPolicy, retry_after
from app.webhooks.ssrf import Destinations, WebhookUrlForbidden, check

STRICT = Destinations()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.5:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://localhost:9000/hook",  # a hostname resolving to loopback
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:pw@example.com/hook",
        "not a url",
    ],
)
def test_internal_and_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookUrlForbidden) as refused:
        check(url, STRICT)
    assert refused.value.code == "webhook_url_forbidden"
    assert refused.value.http_status == 400


def test_public_addresses_pass_and_the_checked_address_is_pinned() -> None:
    target = check("https://93.184.215.14:8443/a?b=1", STRICT)
    assert str(target.address) == "93.184.215.14"
    assert target.pinned_url("https://93.184.215.14:8443/a?b=1").endswith(":8443/a?b=1")


def test_the_allow_settings_let_private_receivers_in() -> None:
    assert str(check("http://127.0.0.1:9/x", Destinations(allow_private=True)).address) == (
        "127.0.0.1"
    )
    target = check("http://localhost:9/x", Destinations(allow_hosts=frozenset({"localhost"})))
    assert target.address.is_loopback
    assert target.host_header == "localhost:9"
    with pytest.raises(WebhookUrlForbidden):
        check("http://10.0.0.1/x", Destinations(allow_hosts=frozenset({"localhost"})))


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("7") == 7.0
    assert retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after("garbage") is None
    assert retry_after(None) is None


def test_backoff_has_full_jitter_under_a_growing_capped_ceiling() -> None:
    policy = RetryPolicy(base_s=5, factor=4, cap_s=3600, max_attempts=8)
    for attempt, ceiling in ((1, 5), (2, 20), (3, 80), (7, 3600)):
        delays = [policy.delay_s(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not a fixed step
    assert policy.delay_s(3, retry_after_s=12) == 12
    assert policy.delay_s(3, retry_after_s=10**6) == 24 * 3600
