"""Rate limits: counted in the real Redis server (shared by every process), in memory when no
Redis is configured; answered with the RateLimit-* headers and 429 `rate_limited`."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import redis.asyncio as redis
from limits.aio.storage import MemoryStorage, RedisStorage

from bnpl.gateway import RateLimiter
from bnpl.kit.ids import new_id
from tests.integration.foundation.conftest import PROBE_CONSUMER_RULE, Probe
from tests.integration.foundation.probe import consumer_token, merchant_token
from tests.support import assert_problem, bearer


def rate_headers(headers: httpx.Headers) -> tuple[int, int, int]:
    """(limit, remaining, reset)"""
    return (
        int(headers["ratelimit-limit"]),
        int(headers["ratelimit-remaining"]),
        int(headers["ratelimit-reset"]),
    )


async def test_the_app_counts_in_redis(probe_app: Probe) -> None:
    assert probe_app.settings.redis_url
    assert isinstance(probe_app.rt.limiter.storage, RedisStorage)


async def test_merchant_and_consumer_answers_carry_the_headers(probe_app: Probe) -> None:
    r = await probe_app.client.get("/probe/merchant", headers=bearer(merchant_token(new_id("mer"))))
    limit, remaining, reset = rate_headers(r.headers)
    assert (limit, remaining) == (200, 199)
    assert 0 <= reset <= 2
    r = await probe_app.client.get("/probe/consumer", headers=bearer(consumer_token(new_id("cus"))))
    assert rate_headers(r.headers)[:2] == (3, 2)
    # operators and anonymous callers are not limited per principal
    r = await probe_app.client.get("/probe/operator", headers=probe_app.operator)
    assert "ratelimit-limit" not in r.headers


async def test_exceeding_the_limit_is_429_with_retry_after(probe_app: Probe) -> None:
    consumer_id = new_id("cus")
    headers = bearer(consumer_token(consumer_id))
    assert PROBE_CONSUMER_RULE == "3/second"
    remaining = []
    for _ in range(3):
        r = await probe_app.client.get("/probe/consumer", headers=headers)
        assert r.status_code == 200, r.text
        remaining.append(rate_headers(r.headers)[1])
    assert remaining == [2, 1, 0]

    r = await probe_app.client.get("/probe/consumer", headers=headers)
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert rate_headers(r.headers)[:2] == (3, 0)
    assert r.headers["x-request-id"]

    # a limited POST changes nothing, and leaves no idempotency key behind
    key = f"rl-{secrets.token_hex(4)}"
    r = await probe_app.client.post(
        "/probe/widgets",
        json={"amount": 1, "currency": "USD", "kind": "tent", "card_number": "4242424242424242"},
        headers={**headers, "Idempotency-Key": key},
    )
    assert_problem(r, 429, "rate_limited")
    assert await probe_app.widgets(consumer_id) == 0
    assert not await probe_app.rt.db.fetchval(
        "SELECT count(*) FROM gateway.idempotency_keys WHERE key = $1", key
    )

    # another consumer is not affected
    other = bearer(consumer_token(new_id("cus")))
    assert (await probe_app.client.get("/probe/consumer", headers=other)).status_code == 200

    # the window moves on
    await asyncio.sleep(float(r.headers["retry-after"]) + 0.1)
    r = await probe_app.client.get("/probe/consumer", headers=headers)
    assert r.status_code == 200, r.text


async def test_redis_storage_is_shared_between_processes(redis_url: str) -> None:
    first, second = RateLimiter(redis_url), RateLimiter(redis_url)
    key = f"shared:{secrets.token_hex(6)}"
    assert (await first.hit("3/minute", key)).allowed
    assert (await second.hit("3/minute", key)).allowed
    verdict = await first.hit("3/minute", key)
    assert verdict.allowed and verdict.remaining == 0
    denied = await second.hit("3/minute", key)
    assert not denied.allowed
    assert denied.headers()["Retry-After"] == str(max(1, denied.reset_after))
    assert 50 <= denied.reset_after <= 60
    # the counters really live in the Redis server
    server = redis.from_url(redis_url)
    try:
        keys = [k async for k in server.scan_iter(match=f"bnpl-rl*{key}*")]
    finally:
        await server.aclose()
    assert keys


async def test_check_counts_nothing(redis_url: str) -> None:
    limiter = RateLimiter(redis_url)
    key = f"check:{secrets.token_hex(6)}"
    for _ in range(3):
        assert (await limiter.check("1/minute", key)).allowed
    assert (await limiter.hit("1/minute", key)).allowed
    assert not (await limiter.check("1/minute", key)).allowed


async def test_memory_storage_without_redis() -> None:
    limiter = RateLimiter(None)
    assert isinstance(limiter.storage, MemoryStorage)
    verdicts = [await limiter.hit("3/second", "k") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[-1].headers()["Retry-After"] == "1"
    # in memory, each process counts on its own
    assert (await RateLimiter(None).hit("3/second", "k")).allowed
    await asyncio.sleep(1.05)
    assert (await limiter.hit("3/second", "k")).allowed
    await limiter.reset()
    assert (await limiter.hit("1/hour", "k")).remaining == 0


async def test_one_round_trip_hits_share_the_librarys_window(redis_url: str) -> None:
    """`hit` on Redis is one script; the library's own `check` and `clear` see its window."""
    limiter = RateLimiter(redis_url)
    key = f"script-{secrets.token_hex(4)}"
    verdicts = [await limiter.hit("3/minute", key) for _ in range(3)]
    assert [(v.allowed, v.limit, v.remaining) for v in verdicts] == [
        (True, 3, 2),
        (True, 3, 1),
        (True, 3, 0),
    ]
    assert all(55 <= v.reset_after <= 60 for v in verdicts)
    refused = await limiter.hit("3/minute", key)
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert refused.headers()["Retry-After"] == str(refused.reset_after)
    checked = await limiter.check("3/minute", key)  # the library's path, on the same list
    assert (checked.allowed, checked.remaining) == (False, 0)
    await limiter.clear("3/minute", key)
    again = await limiter.hit("3/minute", key)
    assert (again.allowed, again.remaining) == (True, 2)
