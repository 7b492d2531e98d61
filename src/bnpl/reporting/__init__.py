"""Reporting (the seed's Reporting Service): real-time aggregates from events.

The consumer `reporting.record_facts` keeps, from public events, one row per checkout and one
per money figure (captures, refunds, late fees, answered plan charges), in its own schema;
`GET /v1/reports/summary` sums them over a period, and adds the plan book as it stands now
from the installments facade. Nothing imports reporting but the lake, which rebuilds the
facts from its archive (`rebuild`).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from bnpl.messaging import Event
from bnpl.reporting import facts
from bnpl.runtime import Runtime

__all__ = ["FACT_TYPES", "rebuild", "register"]

# The event types reporting keeps facts from.
FACT_TYPES = facts.TYPES


def register(rt: Runtime) -> None:
    rt.bus.subscribe_batch(facts.RECORD_FACTS, facts.TYPES, facts.record)


async def rebuild(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Forget every fact and keep them again from `events` (the lake's `bnpl replay`), in the
    caller's transaction."""
    await conn.execute("TRUNCATE reporting.checkouts, reporting.amounts")
    wanted = [e for e in events if e.type in facts.TYPES]
    for start in range(0, len(wanted), 1000):
        await facts.record(conn, wanted[start : start + 1000])
