"""Events as plain typed data, and the outbox write that publishes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bnpl.kit.ids import new_id


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    type: str
    aggregate_id: str
    data: Mapping[str, Any]
    occurred_at: datetime
    merchant_id: str | None = None
    consumer_id: str | None = None
    position: int | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Event:
        return cls(
            event_id=row["event_id"],
            type=row["type"],
            aggregate_id=row["aggregate_id"],
            data=row["data"],
            occurred_at=row["occurred_at"],
            merchant_id=row["merchant_id"],
            consumer_id=row["consumer_id"],
            position=row["position"],
        )


async def publish(
    conn: asyncpg.Connection,
    type: str,
    aggregate_id: str,
    data: Mapping[str, Any],
    *,
    occurred_at: datetime,
    merchant_id: str | None = None,
    consumer_id: str | None = None,
) -> str:
    """Write an event to the outbox in the caller's transaction; returns its id.

    It is delivered to subscribers only if that transaction commits.
    """
    event_id = new_id("evt")
    await conn.execute(
        """
        INSERT INTO messaging.events
            (event_id, type, aggregate_id, data, occurred_at, merchant_id, consumer_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        event_id,
        type,
        aggregate_id,
        dict(data),
        occurred_at,
        merchant_id,
        consumer_id,
    )
    return event_id
