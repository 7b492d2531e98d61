"""`bnpl replay`: the reporting read model rebuilt from the archive alone."""

from __future__ import annotations

import asyncio

import orjson

import bnpl.reporting as reporting
from bnpl.kit.db import Database
from bnpl.lake.archiver import Lake
from bnpl.lake.duck import connect
from bnpl.messaging import Event


def archived_events(lake: Lake, types: frozenset[str]) -> list[Event]:
    """The archived events of `types`, in the order they were written to the outbox."""
    with connect(lake) as con:
        rows = con.execute(
            "SELECT id, type, aggregate_id, data::VARCHAR, occurred_at, merchant_id, "
            "consumer_id, seq FROM events WHERE type IN (SELECT unnest(?)) ORDER BY seq",
            [sorted(types)],
        ).fetchall()
    return [
        Event(
            event_id=r[0],
            type=r[1],
            aggregate_id=r[2],
            data=orjson.loads(r[3]),
            occurred_at=r[4],
            merchant_id=r[5],
            consumer_id=r[6],
            position=r[7],
        )
        for r in rows
    ]


async def replay_reporting(db: Database, lake: Lake) -> int:
    """Rebuild reporting's facts from the archive, in one transaction; how many events."""
    events = await asyncio.to_thread(archived_events, lake, reporting.FACT_TYPES)
    async with db.transaction() as conn:
        await reporting.rebuild(conn, events)
    return len(events)
