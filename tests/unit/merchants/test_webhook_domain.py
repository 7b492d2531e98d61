"""The webhook rules: which urls may receive, the Standard Webhooks signature (checked with the
reference library), the retry schedule."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bnpl.merchants.webhooks.domain import (
    RETRY_AFTER,
    InvalidWebhookUrl,
    blocked_address,
    body,
    check_url,
    delivered,
    headers,
    is_blocked,
    new_secret,
    next_attempt,
    subscribes,
)


@pytest.mark.parametrize(
    "url",
    ["https://shop.example/hooks", "https://8.8.8.8/x", "https://shop.example:8443/a?b=c"],
)
def test_public_https_urls_may_receive(url: str) -> None:
    assert check_url(url, sandbox=False).scheme == "https"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hooks",
        "http://localhost:9000/hooks",
        "https://localhost/hooks",
        "https://127.0.0.1/hooks",
    ],
)
def test_sandbox_mode_allows_the_loopback_names(url: str) -> None:
    check_url(url, sandbox=True)
    with pytest.raises(InvalidWebhookUrl):
        check_url(url, sandbox=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example/hooks",  # http, not loopback
        "ftp://shop.example/hooks",
        "https://10.1.2.3/x",
        "https://192.168.0.10/x",
        "https://172.16.5.4/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fe80::1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://100.64.0.1/x",  # carrier-grade NAT
        "https://0.0.0.0/x",
        "https://user:pass@shop.example/x",
        "https://shop.example:99999/x",
        "https:///nohost",
        "http://10.0.0.1/x",
        "https://" + "a" * 2050 + ".example/",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    for sandbox in (True, False):
        with pytest.raises(InvalidWebhookUrl):
            check_url(url, sandbox=sandbox)


def test_a_name_is_refused_when_it_resolves_to_a_non_public_address() -> None:
    assert blocked_address("shop.example", ["93.184.215.14"], sandbox=False) is None
    assert blocked_address("shop.example", ["93.184.215.14", "10.0.0.7"], sandbox=False) == (
        "10.0.0.7"
    )
    assert blocked_address("shop.example", ["fe80::1%eth0"], sandbox=True) == "fe80::1%eth0"
    assert blocked_address("localhost", ["127.0.0.1"], sandbox=True) is None
    assert blocked_address("localhost", ["127.0.0.1"], sandbox=False) == "127.0.0.1"
    assert is_blocked(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not is_blocked(ipaddress.ip_address("2606:4700::1111"))


def test_a_subscription_names_types_or_all() -> None:
    assert subscribes(["checkout.captured"], "checkout.captured")
    assert not subscribes(["checkout.captured"], "checkout.voided")
    assert subscribes(["*"], "settlement.paid")


def test_the_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
    occurred = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    raw = body("evt_1", "checkout.captured", occurred, {"id": "chk_1", "amount": 12345})
    assert json.loads(raw) == {
        "id": "evt_1",
        "type": "checkout.captured",
        "created_at": "2026-12-01T09:30:00Z",
        "data": {"id": "chk_1", "amount": 12345},
    }
    now = int(datetime.now(UTC).timestamp())
    signed = headers(secret, "evt_1", now, raw)
    assert signed["webhook-id"] == "evt_1" and signed["webhook-timestamp"] == str(now)
    assert Webhook(secret).verify(raw, signed) == json.loads(raw)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(raw.replace("12345", "12346"), signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(raw, signed)


def test_failed_deliveries_are_retried_for_more_than_three_days_then_given_up() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    at, times = start, []
    for made in range(1, 20):
        later = next_attempt(made, at)
        if later is None:
            break
        times.append(later)
        at = later
    assert len(times) == len(RETRY_AFTER) == 9  # ten attempts in all
    assert times[0] - start == timedelta(seconds=5)
    gaps = [b - a for a, b in zip([start, *times], times, strict=False)]
    assert gaps == sorted(gaps)  # never shorter than the one before
    assert times[-1] - start > timedelta(days=3)


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        (200, True),
        (204, True),
        (299, True),
        (301, False),
        (404, False),
        (500, False),
        (None, False),
    ],
)
def test_only_a_2xx_answer_delivers(code: int | None, ok: bool) -> None:
    assert delivered(code) is ok
