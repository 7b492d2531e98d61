"""Anonymous password-hashing work is bounded: sign-ups and logins are limited per client
address (the socket peer, or what a trusted proxy forwarded), and a full hashing queue sheds
requests at once with 503 `overloaded` instead of queueing them for seconds."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bnpl.app import create_app
from bnpl.bootstrap import Roles
from bnpl.config import Settings
from bnpl.identity import crypto
from bnpl.runtime import Runtime
from tests.support import Api, assert_problem, unique

PER_ADDRESS = "3/minute"
PROXIES = "10.0.0.0/8, 2001:db8:ffff::/48"


def random_v4() -> str:
    # 100.64.0.0/10 (shared address space): many addresses, so no two runs share a bucket.
    return f"100.{64 + secrets.randbelow(64)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


@pytest.fixture(scope="module")
async def tight(settings: Settings, app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with 3 sign-ins a minute per address, trusted proxies in 10/8, and no room
    for waiting hashes (one running per hashing thread, none queued). On the shared database,
    which `app` has migrated."""
    own = settings.model_copy(
        update={
            "rate_limit_per_address": PER_ADDRESS,
            "trusted_proxies": PROXIES,
            "hash_queue_per_thread": 0,
            "db_pool_max": 6,
        }
    )
    application = create_app(own, Roles(workers=False, migrate=False))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture
async def at(tight: FastAPI) -> AsyncIterator[Any]:
    """`at(address)`: a client of the tight app whose socket peer is `address`."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=tight, client=(address, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://bnpl.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def guess(client: httpx.AsyncClient, forwarded: str | None = None) -> httpx.Response:
    """A login for an unknown email: costs a hash, answers 401 when let through."""
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return await client.post(
        "/v1/auth/login",
        json={"email": f"{unique('nobody')}@example.com", "password": "not the password"},
        headers=headers,
    )


def assert_limited(r: httpx.Response) -> None:
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-limit"] == "3"
    assert r.headers["ratelimit-remaining"] == "0"
    assert int(r.headers["ratelimit-reset"]) >= 1


async def test_a_burst_from_one_address_is_limited_and_others_get_in(at: Any, api: Api) -> None:
    one = at(random_v4())
    for _ in range(3):
        assert_problem(await guess(one), 401, "invalid_credentials")
    assert_limited(await guess(one))
    # Sign-ups share the address's allowance: they cost a hash too.
    r = await one.post("/v1/consumers", json=api.consumer_payload())
    assert_limited(r)
    # Another address is not affected.
    other = at(random_v4())
    assert_problem(await guess(other), 401, "invalid_credentials")
    assert (await other.post("/v1/consumers", json=api.consumer_payload())).status_code == 201


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(at: Any) -> None:
    proxy = at("10.20.30.40")
    client, neighbour = random_v4(), random_v4()
    for _ in range(3):
        assert_problem(await guess(proxy, client), 401)
    assert_limited(await guess(proxy, client))
    # Hops the client wrote itself (left of what the proxy appended) change nothing, and
    # trusted proxies further right are skipped.
    assert_limited(await guess(proxy, f"{random_v4()}, {client}"))
    assert_limited(await guess(proxy, f"{client}, 10.9.9.9"))
    # Another client behind the same proxy still gets in.
    assert_problem(await guess(proxy, neighbour), 401)


async def test_an_untrusted_peer_cannot_choose_its_address(at: Any) -> None:
    peer = at(random_v4())
    for _ in range(3):
        assert_problem(await guess(peer, random_v4()), 401)
    assert_limited(await guess(peer, random_v4()))
    assert_limited(await guess(peer))


async def test_ipv6_clients_are_counted_per_64(at: Any) -> None:
    prefix = f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}"
    for host in ("1", "2", "abcd:1"):
        assert_problem(await guess(at(f"{prefix}::{host}")), 401)
    assert_limited(await guess(at(f"{prefix}:ffff:ffff:ffff:ffff")))
    # A trusted IPv6 proxy forwards an IPv4 client.
    v4 = random_v4()
    proxy = at("2001:db8:ffff::10")
    for _ in range(3):
        assert_problem(await guess(proxy, v4), 401)
    assert_limited(await guess(proxy, v4))


async def test_a_full_hashing_queue_sheds_at_once(tight: FastAPI, at: Any, api: Api) -> None:
    rt: Runtime = tight.state.runtime
    assert rt.settings.hash_queue_per_thread == 0
    # Twelve logins at once from twelve addresses: one hash per thread runs, none may wait.
    answers = await asyncio.gather(*(guess(at(random_v4())) for _ in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {401, 503}, statuses
    assert statuses.count(401) >= crypto.HASH_THREADS, statuses
    for a in answers:
        if a.status_code == 503:
            assert_problem(a, 503, "overloaded")
            assert a.headers["retry-after"] == "1"
            assert a.headers["x-request-id"]
    # Sign-ups are shed the same way, and a shed sign-up creates nobody.
    payloads = [api.consumer_payload() for _ in range(8)]
    answers = await asyncio.gather(
        *(at(random_v4()).post("/v1/consumers", json=p) for p in payloads)
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {201, 503}, [a.text for a in answers]
    shed = [p["email"] for p, a in zip(payloads, answers, strict=True) if a.status_code == 503]
    assert not await rt.db.fetchval(
        "SELECT count(*) FROM identity.consumers WHERE email = ANY($1::text[])", shed
    )
    # The queue drains and the next request is served.
    for _ in range(100):
        if crypto.hashing_has_room(0):
            break
        await asyncio.sleep(0.05)
    assert_problem(await guess(at(random_v4())), 401, "invalid_credentials")
