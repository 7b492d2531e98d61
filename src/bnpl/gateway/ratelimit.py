"""Rate limits with the `limits` library: Redis storage when configured, memory otherwise."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

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


class RateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        self.storage: Storage
        if redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            self.storage = RedisStorage(uri, implementation="redispy", key_prefix="bnpl-rl")
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
        allowed = await self._strategy.hit(item, key)
        return await self._verdict(item, allowed, key)

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
