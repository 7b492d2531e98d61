"""The feature store: each consumer's repayment history and bureau answer, kept current by
event consumers and read by every decision. Redis when configured, PostgreSQL otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg
import redis.asyncio as aioredis

THIN_FILE_MAX_HISTORY = 4  # fewer repayments than this: a thin file (the model's definition)


@dataclass(frozen=True, slots=True)
class History:
    on_time_payments: int = 0
    late_payments: int = 0
    bureau_score: int | None = None
    bureau_checked: bool = False

    @property
    def thin_file(self) -> bool:
        return self.on_time_payments + self.late_payments < THIN_FILE_MAX_HISTORY


class FeatureStore(Protocol):
    async def history(self, conn: asyncpg.Connection, consumer_id: str) -> History: ...

    async def record_repayment(
        self, conn: asyncpg.Connection, consumer_id: str, *, on_time: bool, event_id: str
    ) -> None: ...

    async def record_bureau(
        self, conn: asyncpg.Connection, consumer_id: str, score: int | None, at: datetime
    ) -> None: ...


class PostgresFeatureStore:
    """Rows in `credit.features`, written in the consumer's transaction (inbox: exactly once)."""

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
            row["bureau_checked_at"] is not None,
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


class RedisFeatureStore:
    """One hash per consumer. Redis is outside the consumer's transaction, so a repayment
    is counted once per event id (a `SET NX` marker) rather than relying on the inbox."""

    def __init__(self, client: aioredis.Redis, prefix: str = "bnpl:features:") -> None:
        self.client = client
        self.prefix = prefix

    async def history(self, conn: asyncpg.Connection, consumer_id: str) -> History:
        raw = await self.client.hgetall(self.prefix + consumer_id)
        if not raw:
            return History()
        values = {_text(k): _text(v) for k, v in raw.items()}
        score = values.get("bureau_score", "")
        return History(
            int(values.get("on_time_payments", 0)),
            int(values.get("late_payments", 0)),
            int(score) if score else None,
            "bureau_checked_at" in values,
        )

    async def record_repayment(
        self, conn: asyncpg.Connection, consumer_id: str, *, on_time: bool, event_id: str
    ) -> None:
        first = await self.client.set(f"{self.prefix}seen:{event_id}", 1, nx=True, ex=7 * 86400)
        if first:
            field = "on_time_payments" if on_time else "late_payments"
            await self.client.hincrby(self.prefix + consumer_id, field, 1)

    async def record_bureau(
        self, conn: asyncpg.Connection, consumer_id: str, score: int | None, at: datetime
    ) -> None:
        await self.client.hset(
            self.prefix + consumer_id,
            mapping={
                "bureau_score": "" if score is None else str(score),
                "bureau_checked_at": at.isoformat(),
            },
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
