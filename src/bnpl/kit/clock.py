"""The one platform clock.

Business time is wall-clock UTC plus an offset that the sandbox can move forward. The offset
lives in the database (`platform.clock`), so every process of the platform agrees on it; each
process caches it and refreshes it on a short interval and whenever it moves it itself.
Security and protocol time (token lifetimes, rate-limit windows, idempotency retention) never
uses this clock: it uses `wall_now()`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg


def wall_now() -> datetime:
    """Real time, for security and protocol concerns."""
    return datetime.now(UTC)


class ClockError(ValueError):
    """The clock may only move forward."""


class Clock:
    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return wall_now() + self._offset

    def today(self) -> date:
        return self.now().date()

    async def refresh(self, conn: asyncpg.Connection) -> None:
        offset = await conn.fetchval("SELECT offset_us FROM platform.clock WHERE id = 1")
        if offset is not None:
            self._offset = timedelta(microseconds=offset)

    async def move_to(self, conn: asyncpg.Connection, target: datetime) -> datetime:
        """Move business time forward to `target` (never back); returns the new now."""
        if target.tzinfo is None:
            raise ClockError("target time must carry a time zone")
        await self.refresh(conn)
        current = self.now()
        if target < current:
            raise ClockError("time only moves forward")
        offset = target - wall_now()
        offset_us = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        # GREATEST keeps two racing movers from moving time backwards.
        stored = await conn.fetchval(
            """
            INSERT INTO platform.clock (id, offset_us) VALUES (1, $1)
            ON CONFLICT (id) DO UPDATE SET offset_us = GREATEST(platform.clock.offset_us, $1)
            RETURNING offset_us
            """,
            offset_us,
        )
        self._offset = timedelta(microseconds=stored)
        return self.now()
