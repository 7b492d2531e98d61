"""Pure webhook rules (API.md "Webhooks"), no I/O: which urls may receive, how a delivery is
signed (Standard Webhooks), when a failed one is tried again, what an endpoint receives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

from bnpl.kit.db import json_text

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix)
WILDCARD: Final = "*"
MAX_URL: Final = 2048
MAX_ENDPOINTS: Final = 16  # a merchant's endpoints (not deleted) at most
TIMEOUT_S: Final = 10.0  # an answer later than this is a failed attempt
LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost"})  # allowed in sandbox mode

# All a merchant is told when a url's host may not receive webhooks, whatever the reason (an
# address that is not public, a name that resolves to one, or a name that does not resolve):
# never the address, and never which of these it was, so that the platform's resolver cannot
# be used to learn what internal names exist or where they point.
HOST_NOT_ALLOWED: Final = "the url's host is not allowed: webhooks go only to public addresses"

_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")  # deprecated (RFC 4291)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix (RFC 6052)
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")  # local use (RFC 8215)
_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
# Inside 2000::/3 but not public; listed because older Pythons' `is_global` misses some.
_NOT_PUBLIC_V6: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, benchmarking...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_SITE_LOCAL: Final = ipaddress.IPv6Network("fec0::/10")  # deprecated, still routed by some

# After the first attempt, a failed delivery is tried again after each of these (Standard
# Webhooks' schedule, stretched past 3 days): ten attempts over 75 hours and 35 minutes.
RETRY_AFTER: Final[tuple[timedelta, ...]] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=24),
    timedelta(hours=24),
)


class InvalidWebhookUrl(ValueError):
    """A url the platform will not deliver to."""


def check_url(url: str, *, sandbox: bool) -> SplitResult:
    """The url's parts if it may receive webhooks, judged on its text alone: https, or in
    sandbox mode http to 127.0.0.1 / localhost; no credentials in it; an IP literal must be a
    public address (a name is checked by `host_refusal` once it is resolved)."""
    if len(url) > MAX_URL:
        raise InvalidWebhookUrl(f"the url is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise InvalidWebhookUrl("the url is not valid") from exc
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidWebhookUrl("the url has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("the url must not carry credentials")
    loopback_allowed = sandbox and host in LOOPBACK_NAMES
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback_allowed):
        raise InvalidWebhookUrl(
            "the url must be https (in sandbox mode, http://127.0.0.1 or http://localhost too)"
        )
    if not loopback_allowed:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and is_blocked(literal):
            raise InvalidWebhookUrl(HOST_NOT_ALLOWED)
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidWebhookUrl(HOST_NOT_ALLOWED)
    return parts


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries, by which it may reach an IPv4 network:
    IPv4-mapped and -compatible, NAT64, 6to4 (the relay's) and Teredo (server and client)."""
    if any(address in n for n in (_IPV4_MAPPED, _IPV4_COMPATIBLE, _NAT64, _NAT64_LOCAL)):
        # In the last 32 bits (for 64:ff9b:1::/48, its /96 form; that prefix is refused anyway).
        return (ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def is_blocked(address: Address) -> bool:
    """An address webhooks never go to: private, loopback, link-local, carrier-grade NAT,
    multicast, documentation and other non-public ranges.

    An IPv6 address that carries an IPv4 address is refused when that IPv4 address is: an
    IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) address is judged by it alone, a 6to4
    address (2002::/16) by the relay's; Teredo (2001::/32) is refused in any case, being in
    the IETF's protocol range. Any other IPv6 address must be global unicast (2000::/3) and
    public: IPv4-compatible (::/96, deprecated), local-use NAT64 (64:ff9b:1::/48), site-local
    (fec0::/10), unique-local, link-local, loopback and multicast addresses are refused.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return not address.is_global or address.is_multicast
    embedded = _embedded_ipv4(address)
    if any(is_blocked(v4) for v4 in embedded):
        return True
    if address in _IPV4_MAPPED or address in _NAT64:
        return False  # it reaches the (public) IPv4 address it carries, and nothing else
    if address not in _GLOBAL_UNICAST or address in _SITE_LOCAL:
        return True
    if address.sixtofour is not None:
        return False  # 2002::/16 is 6to4 throughout; the IPv4 it carries is public
    if any(address in network for network in _NOT_PUBLIC_V6):
        return True
    return not address.is_global or address.is_multicast


def blocked_address(host: str, resolved: Iterable[str], *, sandbox: bool) -> str | None:
    """The first address `host` resolved to that webhooks must not reach (None: all fine)."""
    if sandbox and host.lower() in LOOPBACK_NAMES:
        return None
    for text in resolved:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if is_blocked(address):
            return text
    return None


def host_refusal(host: str, resolved: Sequence[str], *, sandbox: bool) -> str | None:
    """Why webhooks must not go to `host`, which resolved to `resolved` (None: they may).

    A host may receive only when it resolved to at least one address, all of them public (in
    sandbox mode the two loopback names are let through). The reason is for the operators'
    logs; the merchant is told `HOST_NOT_ALLOWED` whatever it is.
    """
    if not resolved:
        return "it does not resolve"
    if sandbox and host.lower() in LOOPBACK_NAMES:
        return None
    blocked = blocked_address(host, resolved, sandbox=sandbox)
    if blocked is not None:
        return f"it resolves to a non-public address ({blocked})"
    return None


def subscribes(events: Sequence[str], event_type: str) -> bool:
    return WILDCARD in events or event_type in events


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes (the signing key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the base64 part of
    the secret (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def body(event_id: str, event_type: str, occurred_at: datetime, data: Any) -> str:
    """What an endpoint receives: `{"id", "type", "created_at", "data"}`, as `GET
    /v1/events/{id}` shows the event."""
    created = occurred_at.isoformat().replace("+00:00", "Z")
    return json_text({"id": event_id, "type": event_type, "created_at": created, "data": data})


def next_attempt(attempts_made: int, now: datetime) -> datetime | None:
    """When to try a delivery again after `attempts_made` failed attempts (None: give up)."""
    if attempts_made > len(RETRY_AFTER):
        return None
    return now + RETRY_AFTER[attempts_made - 1]


def delivered(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300
