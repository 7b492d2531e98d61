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
    HOST_NOT_ALLOWED,
    RETRY_AFTER,
    InvalidWebhookUrl,
    blocked_address,
    body,
    check_url,
    delivered,
    headers,
    host_refusal,
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


# Teredo: 2001:0:<server IPv4>:<flags>:<port ^ 0xffff>:<client IPv4 ^ 0xffffffff>.
TEREDO_CLIENT_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"  # server 65.54.227.120
TEREDO_SERVER_10_0_0_1 = "2001:0:a00:1:8000:63bf:f7f7:f7f7"  # client 8.8.8.8


@pytest.mark.parametrize(
    "address",
    [
        # IPv6 forms that carry a private IPv4 address
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:5",  # IPv4-compatible 10.0.0.5
        "::ffff:7f00:1",  # IPv4-mapped 127.0.0.1
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",  # local-use NAT64 prefix
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:5::1",  # 6to4 of 10.0.0.5
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        TEREDO_CLIENT_10_0_0_1,
        TEREDO_SERVER_10_0_0_1,
        # IPv6 ranges that are not public
        "fec0::1",  # site-local (deprecated)
        "feff::1",  # site-local's top
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",  # unique-local
        "ff02::1",  # multicast
        "ff0e::1",  # global-scope multicast
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (RFC 9637)
        "100::1",  # discard
        "2001:10::1",  # ORCHID
        "4000::1",  # outside global unicast 2000::/3
        "::808:808",  # IPv4-compatible: deprecated, refused whatever it carries
        # IPv4
        "127.0.0.1",
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "192.0.2.1",
        "255.255.255.255",
    ],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert is_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001:80b::200e",
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "::ffff:8.8.8.8",  # IPv4-mapped 8.8.8.8
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    ],
)
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert not is_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host",
    [
        "[::7f00:1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::1]",
        "[fec0::1]",
        "[::ffff:10.0.0.1]",
        f"[{TEREDO_CLIENT_10_0_0_1}]",
        "[3fff::1]",
    ],
)
def test_ipv6_literals_that_reach_private_addresses_are_refused(host: str) -> None:
    for sandbox in (True, False):
        with pytest.raises(InvalidWebhookUrl) as refused:
            check_url(f"https://{host}/", sandbox=sandbox)
        assert str(refused.value) == HOST_NOT_ALLOWED


def test_what_the_merchant_is_told_never_shows_an_address() -> None:
    # Every refusal of a host reads the same, and names no address.
    for url in ("https://10.0.0.5/x", "https://[::1]/x", "https://localhost/x"):
        with pytest.raises(InvalidWebhookUrl) as refused:
            check_url(url, sandbox=False)
        assert str(refused.value) == HOST_NOT_ALLOWED
    assert not any(ch.isdigit() for ch in HOST_NOT_ALLOWED)
    assert "resolves to a" not in HOST_NOT_ALLOWED


def test_a_host_is_refused_unless_it_resolves_only_to_public_addresses() -> None:
    # The reason is for operators' logs; the merchant only ever sees HOST_NOT_ALLOWED.
    assert host_refusal("shop.example", ["93.184.215.14"], sandbox=False) is None
    assert host_refusal("shop.example", ["2606:4700::1111", "8.8.8.8"], sandbox=False) is None
    not_resolving = host_refusal("shop.example", [], sandbox=False)
    private = host_refusal("shop.example", ["93.184.215.14", "10.0.0.5"], sandbox=False)
    assert not_resolving is not None and private is not None and "10.0.0.5" in private
    assert host_refusal("db.internal", ["64:ff9b::a00:5"], sandbox=True) is not None
    # in sandbox mode the two loopback names are let through, as they are at creation
    assert host_refusal("localhost", ["127.0.0.1", "::1"], sandbox=True) is None
    assert host_refusal("127.0.0.1", ["127.0.0.1"], sandbox=True) is None
    assert host_refusal("localhost", ["127.0.0.1"], sandbox=False) is not None


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
