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

SECRET_PREFIX: Final = "whsec_"
WILDCARD: Final = "*"
MAX_URL: Final = 2048
TIMEOUT_S: Final = 10.0  # an answer later than this is a failed attempt
LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost"})  # allowed in sandbox mode

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
    public address (a name is checked by `blocked_address` once it is resolved)."""
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
            raise InvalidWebhookUrl("the url points at a private, loopback or link-local address")
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidWebhookUrl("the url points at a loopback address")
    return parts


def is_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address webhooks never go to: private, loopback, link-local and other non-public
    ranges (an IPv4-mapped IPv6 address is judged as the IPv4 address it maps)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
