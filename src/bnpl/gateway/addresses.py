"""The client's address, and the per-address rate limit of the anonymous credential endpoints.

The address is the socket peer's, unless the peer is one of the trusted reverse proxies
(`BNPL_TRUSTED_PROXIES`, CIDRs): then it is the rightmost `X-Forwarded-For` hop that is not
itself a trusted proxy. Hops further left were written by the client and prove nothing; a
peer that is not trusted may send any `X-Forwarded-For` it likes, and it is ignored.

IPv6 clients are counted per /64: one subscriber usually holds a whole /64, so counting
single addresses would give one attacker 2^64 buckets.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from fastapi import Depends, Request

from bnpl.kit.errors import ProblemError

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger(__name__)

# The unix-socket or test-transport peer has no address: all such callers share one bucket.
UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """`BNPL_TRUSTED_PROXIES` parsed: comma-separated CIDRs or single addresses."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: list[str], networks: tuple[Network, ...]
) -> str:
    """The client's address (as a rate-limit key) from the socket peer and the
    X-Forwarded-For header values, believed only from a trusted proxy."""
    address = _parse(peer) if peer else None
    if address is None:
        return UNKNOWN
    if networks and _trusted(address, networks):
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:
                break  # garbage where a proxy should have written an address: stop here
            address = parsed
            if not _trusted(parsed, networks):
                break
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def request_address(request: Request, trusted_proxies: str) -> str:
    client = request.scope.get("client")
    peer = client[0] if client else None
    forwarded = [
        value.decode("latin-1")
        for name, value in request.scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    ]
    return client_address(peer, forwarded, trusted_networks(trusted_proxies))


async def limit_per_address(request: Request) -> None:
    """A route dependency: count the request against its client address
    (`BNPL_RATE_LIMIT_PER_ADDRESS`); 429 `rate_limited` when the address has had its share.

    For the endpoints that cost a password hash whoever calls them (sign-up, login): the
    limits per merchant key, consumer and email cannot stop one client spreading work over
    many new emails."""
    rt: Runtime = request.app.state.runtime
    address = request_address(request, rt.settings.trusted_proxies)
    try:
        verdict = await rt.limiter.hit(rt.settings.rate_limit_per_address, f"address:{address}")
    except Exception:
        # As for the gateway's other limits: losing the store must not take sign-in down.
        log.exception("rate limiter unavailable; request let through")
        return
    if not verdict.allowed:
        raise ProblemError(
            429,
            "rate_limited",
            "Too many sign-ups or logins from this address; slow down.",
            headers=verdict.headers(),
        )


# `dependencies=[PerAddressLimit]` on a route.
PerAddressLimit = Depends(limit_per_address)
