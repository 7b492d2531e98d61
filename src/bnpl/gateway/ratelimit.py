"""Rate limits with the `limits` library: Redis storage when configured, memory otherwise.

Every API request is counted, and its answer carries the window's figures (the RateLimit-*
headers): with `limits` that is two round trips to Redis, the hit and then the window's
stats. On Redis, `hit` makes it one: a script that runs the library's own two steps (its
moving-window list, under the library's key, so `check` and `clear` see the same window).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window has room again

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after))
        return headers


KEY_PREFIX = "bnpl-rl"

# The library's acquire_moving_window.lua, then its moving_window.lua on the same list: one
# round trip returns {allowed, entries in the window, the oldest entry's time}.
HIT_AND_COUNT = """
local now, limit, expiry = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local allowed = 0
local last = redis.call('lindex', KEYS[1], limit - 1)
if not (last and tonumber(last) >= now - expiry) then
    redis.call('lpush', KEYS[1], ARGV[1])
    redis.call('ltrim', KEYS[1], 0, limit - 1)
    redis.call('expire', KEYS[1], expiry)
    allowed = 1
end
local low, high, oldest = 0, redis.call('llen', KEYS[1]) - 1, nil
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', KEYS[1], mid))
    if value and value >= now - expiry then
        oldest = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if oldest == nil then
    return {allowed, 0, tostring(now)}
end
return {allowed, oldest + 1, tostring(redis.call('lindex', KEYS[1], oldest))}
"""


class RateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        self.storage: Storage
        self._script: Any = None
        if redis_url:
            url = redis_url.removeprefix("async+")
            self.storage = RedisStorage(
                "async+" + url, implementation="redispy", key_prefix=KEY_PREFIX
            )
            self._script = aioredis.Redis.from_url(url).register_script(HIT_AND_COUNT)
        else:
            self.storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._items: dict[str, RateLimitItem] = {}

    def _item(self, rule: str) -> RateLimitItem:
        item = self._items.get(rule)
        if item is None:
            item = self._items[rule] = parse(rule)
        return item

    async def _verdict(self, item: RateLimitItem, allowed: bool, key: str) -> Verdict:
        stats = await self._strategy.get_window_stats(item, key)
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, max(0, stats.remaining), reset_after)

    async def hit(self, rule: str, key: str) -> Verdict:
        """Count one request against `rule` for `key`."""
        item = self._item(rule)
        if self._script is None:
            allowed = await self._strategy.hit(item, key)
            return await self._verdict(item, allowed, key)
        now = time.time()
        expiry = item.get_expiry()
        allowed_flag, count, oldest = await self._script(
            keys=[f"{KEY_PREFIX}:{item.key_for(key)}"], args=[now, item.amount, expiry]
        )
        reset_after = max(0, math.ceil(float(oldest) + expiry - now))
        return Verdict(bool(allowed_flag), item.amount, max(0, item.amount - count), reset_after)

    async def check(self, rule: str, key: str) -> Verdict:
        """Would one more hit be allowed? Counts nothing."""
        item = self._item(rule)
        allowed = await self._strategy.test(item, key)
        return await self._verdict(item, allowed, key)

    async def clear(self, rule: str, key: str) -> None:
        """Forget every hit counted against `rule` for `key`."""
        await self._strategy.clear(self._item(rule), key)

    async def reset(self) -> None:
        await self.storage.reset()
