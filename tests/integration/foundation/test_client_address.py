"""The client address the per-address limits count: the socket peer, or the rightmost
X-Forwarded-For hop that is not a trusted proxy when (and only when) the peer is one."""

from __future__ import annotations

from bnpl.gateway import client_address
from bnpl.gateway.addresses import UNKNOWN, trusted_networks

PROXIES = trusted_networks("10.0.0.0/8, 192.168.1.1, 2001:db8:ffff::/48")


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    nobody = trusted_networks("")
    assert nobody == ()
    assert client_address("203.0.113.9", ["198.51.100.1"], nobody) == "203.0.113.9"
    assert client_address("10.0.0.1", ["198.51.100.1"], nobody) == "10.0.0.1"


def test_an_untrusted_peer_forwards_nothing() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"


def test_the_rightmost_untrusted_hop() -> None:
    assert client_address("10.0.0.1", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    # Hops left of the first untrusted one were written by the client.
    assert client_address("10.0.0.1", ["1.2.3.4, 198.51.100.1"], PROXIES) == "198.51.100.1"
    # Trusted proxies on the way are skipped; several header lines read as one list.
    forwarded = ["1.2.3.4, 198.51.100.1", "192.168.1.1,10.2.3.4"]
    assert client_address("10.0.0.1", forwarded, PROXIES) == "198.51.100.1"
    # Every hop trusted: the leftmost.
    assert client_address("10.0.0.1", ["10.1.1.1, 10.2.2.2"], PROXIES) == "10.1.1.1"
    # No header: the proxy itself.
    assert client_address("10.0.0.1", [], PROXIES) == "10.0.0.1"


def test_forms_of_addresses() -> None:
    assert client_address("10.0.0.1", ["198.51.100.1:4711"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.1", ["[2001:db8::1]:4711"], PROXIES) == "2001:db8::/64"
    assert client_address("::ffff:203.0.113.9", [], PROXIES) == "203.0.113.9"
    # IPv6 clients are counted per /64.
    assert client_address("2001:db8:1:2::5", [], PROXIES) == "2001:db8:1:2::/64"
    assert client_address("2001:db8:ffff::1", ["2001:db8:1:2:3:4:5:6"], PROXIES) == (
        "2001:db8:1:2::/64"
    )
    # Garbage where an address should be: counted as the last hop that was believed.
    assert client_address("10.0.0.1", ["not-an-address"], PROXIES) == "10.0.0.1"
    assert client_address(None, [], PROXIES) == UNKNOWN
    assert client_address("/tmp/bnpl.sock", [], PROXIES) == UNKNOWN
