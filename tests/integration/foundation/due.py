"""A test `DueWork`: rows with a due time, claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from bnpl.kit.clock import Clock
from bnpl.kit.db import Database
from bnpl.messaging import publish

DDL = """
CREATE TABLE IF NOT EXISTS public.due_items (
    id serial PRIMARY KEY,
    name text NOT NULL,
    due_at timestamptz NOT NULL,
    follow_up interval,           -- when set, running the item schedules another one
    done_at timestamptz
);
CREATE TABLE IF NOT EXISTS public.due_runs (
    n bigserial PRIMARY KEY,      -- the order items ran in, over every worker
    item_id integer NOT NULL,     -- no unique key: a double run would show
    name text NOT NULL,
    due_at timestamptz NOT NULL,
    handed_now timestamptz NOT NULL,   -- the `now` the scheduler handed in
    clock_now timestamptz NOT NULL,    -- what the platform clock read while it ran
    worker text NOT NULL
);
"""


class DueItems:
    """Runs due items in due-time order; each emits `probe.item_ran`."""

    name = "probe.run_items"

    def __init__(self, clock: Clock, worker: str = "w") -> None:
        self.clock = clock
        self.worker = worker

    async def next_due_at(self, db: Database) -> datetime | None:
        due: datetime | None = await db.fetchval(
            "SELECT min(due_at) FROM public.due_items WHERE done_at IS NULL"
        )
        return due

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        async with db.transaction() as conn:
            rows = await conn.fetch(
                "SELECT * FROM public.due_items WHERE done_at IS NULL AND due_at <= $1 "
                "ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
            for row in rows:
                await self._run(conn, row, now)
        return len(rows)

    async def _run(self, conn: asyncpg.Connection, row: asyncpg.Record, now: datetime) -> None:
        await conn.execute("UPDATE public.due_items SET done_at = $2 WHERE id = $1", row["id"], now)
        await conn.execute(
            "INSERT INTO public.due_runs (item_id, name, due_at, handed_now, clock_now, worker) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            row["id"],
            row["name"],
            row["due_at"],
            now,
            self.clock.now(),
            self.worker,
        )
        if row["follow_up"] is not None:
            await conn.execute(
                "INSERT INTO public.due_items (name, due_at) VALUES ($1, $2)",
                row["name"] + "+",
                row["due_at"] + row["follow_up"],
            )
        await publish(
            conn, "probe.item_ran", f"item_{row['id']}", {"name": row["name"]}, occurred_at=now
        )


async def add_item(
    db: Database, name: str, due_at: datetime, follow_up: timedelta | None = None
) -> None:
    await db.execute(
        "INSERT INTO public.due_items (name, due_at, follow_up) VALUES ($1, $2, $3)",
        name,
        due_at,
        follow_up,
    )


async def runs(db: Database) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM public.due_runs ORDER BY n")
