"""The feature store: each consumer's repayment history and bureau answer, kept current by
event consumers (`credit.track_repayments`, `credit.prefetch_bureau`) and read by every
decision. Redis when configured (`BNPL_REDIS_URL`), PostgreSQL otherwise.

The other model features (balance, limit, velocity, amount, merchant category, account age)
are not stored here: they are read, under the account's row lock, from the system of record
at decision time, because a cached copy of them could be stale exactly when it matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import redis.asyncio as aioredis

THIN_FILE_MAX_HISTORY = 4  # fewer repayments than this: a thin file (the model's definition)
BUREAU_REPORT_MAX_AGE = timedelta(days=30)  # an older cached report is asked for again
REPAYMENT_MARKER_TTL_S = 30 * 86400  # Redis: how long an event id is remembered as counted


@dataclass(frozen=True, slots=True)
class History:
    """What the feature store knows of one consumer."""

    on_time_payments: int = 0
    late_payments: int = 0
    bureau_score: int | None = None  # None: never asked, or the bureau had no file ("no hit")
    bureau_checked_at: datetime | None = None  # business time of the cached bureau answer

    @property
    def thin_file(self) -> bool:
        return self.on_time_payments + self.late_payments < THIN_FILE_MAX_HISTORY

    def bureau_cached(self, at: datetime, max_age: timedelta = BUREAU_REPORT_MAX_AGE) -> bool:
        """Whether a bureau answer no older than `max_age` is on file at `at`."""
        return self.bureau_checked_at is not None and at - self.bureau_checked_at <= max_age


class FeatureStore(Protocol):
    """`conn` is the caller's transaction; a backend outside PostgreSQL ignores it."""

    async def history(self, conn: asyncpg.Connection, consumer_id: str) -> History: ...

    async def record_repayment(
        self, conn: asyncpg.Connection, consumer_id: str, *, on_time: bool, event_id: str
    ) -> None:
        """Count one installment paid on time or late, once per `event_id`."""
        ...

    async def record_bureau(
        self, conn: asyncpg.Connection, consumer_id: str, score: int | None, at: datetime
    ) -> None:
        """Cache the bureau's answer (`None`: no hit) as of business time `at`."""
        ...

    async def forget_bureau(self, conn: asyncpg.Connection, consumer_id: str) -> None:
        """Drop the cached bureau answer: the next thin-file decision asks the bureau again."""
        ...


class PostgresFeatureStore:
    """Rows in `credit.features`, written in the caller's transaction. A repayment is counted
    exactly once because the bus records the event in its inbox in that same transaction."""

    async def history(self, conn: asyncpg.Connection, consumer_id: str) -> History:
        row = await conn.fetchrow(
            "SELECT on_time_payments, late_payments, bureau_score, bureau_checked_at "
            "FROM credit.features WHERE consumer_id = $1",
            consumer_id,
        )
        if row is None:
            return History()
        return History(
            row["on_time_payments"],
            row["late_payments"],
            row["bureau_score"],
            row["bureau_checked_at"],
        )

    async def record_repayment(
        self, conn: asyncpg.Connection, consumer_id: str, *, on_time: bool, event_id: str
    ) -> None:
        column = "on_time_payments" if on_time else "late_payments"
        await conn.execute(
            f"""
            INSERT INTO credit.features (consumer_id, {column}) VALUES ($1, 1)
            ON CONFLICT (consumer_id) DO UPDATE
            SET {column} = credit.features.{column} + 1, updated_at = now()
            """,
            consumer_id,
        )

    async def record_bureau(
        self, conn: asyncpg.Connection, consumer_id: str, score: int | None, at: datetime
    ) -> None:
        await conn.execute(
            """
            INSERT INTO credit.features (consumer_id, bureau_score, bureau_checked_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (consumer_id) DO UPDATE
            SET bureau_score = EXCLUDED.bureau_score,
                bureau_checked_at = EXCLUDED.bureau_checked_at, updated_at = now()
            """,
            consumer_id,
            score,
            at,
        )

    async def forget_bureau(self, conn: asyncpg.Connection, consumer_id: str) -> None:
        await conn.execute(
            "UPDATE credit.features SET bureau_score = NULL, bureau_checked_at = NULL, "
            "updated_at = now() WHERE consumer_id = $1",
            consumer_id,
        )


# Count a repayment once per event id: the marker and the increment in one atomic step, so a
# crash between them can neither lose the count nor let a redelivery count it twice.
_COUNT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
    return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
return false
"""


class RedisFeatureStore:
    """One hash per consumer, `<prefix>{<consumer_id>}`. Redis is outside the consumer's
    transaction, so the inbox cannot make a count exactly-once: each counted event leaves a
    marker `<prefix>{<consumer_id>}:seen:<event_id>` (set if absent, atomically with the
    increment), and a redelivered event finds it. The braces keep a consumer's keys in one
    Redis Cluster slot."""

    def __init__(self, client: aioredis.Redis, prefix: str = "bnpl:features:") -> None:
        self.client = client
        self.prefix = prefix
        self._count_once = client.register_script(_COUNT_ONCE)

    def key(self, consumer_id: str) -> str:
        return f"{self.prefix}{{{consumer_id}}}"

    async def history(self, conn: asyncpg.Connection, consumer_id: str) -> History:
        raw = await self.client.hgetall(self.key(consumer_id))
        if not raw:
            return History()
        values = {_text(k): _text(v) for k, v in raw.items()}
        score = values.get("bureau_score", "")
        checked = values.get("bureau_checked_at", "")
        return History(
            int(values.get("on_time_payments", 0)),
            int(values.get("late_payments", 0)),
            int(score) if score else None,
            datetime.fromisoformat(checked) if checked else None,
        )

    async def record_repayment(
        self, conn: asyncpg.Connection, consumer_id: str, *, on_time: bool, event_id: str
    ) -> None:
        key = self.key(consumer_id)
        field = "on_time_payments" if on_time else "late_payments"
        await self._count_once(
            keys=[f"{key}:seen:{event_id}", key], args=[field, REPAYMENT_MARKER_TTL_S]
        )

    async def record_bureau(
        self, conn: asyncpg.Connection, consumer_id: str, score: int | None, at: datetime
    ) -> None:
        await self.client.hset(
            self.key(consumer_id),
            mapping={
                "bureau_score": "" if score is None else str(score),
                "bureau_checked_at": at.isoformat(),
            },
        )

    async def forget_bureau(self, conn: asyncpg.Connection, consumer_id: str) -> None:
        await self.client.hdel(self.key(consumer_id), "bureau_score", "bureau_checked_at")

    async def aclose(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
