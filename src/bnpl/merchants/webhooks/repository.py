"""Webhook tables (schema `merchants`): endpoints, jobs, deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str
    events: tuple[str, ...]
    secret_ciphertext: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    """A job being sent: its endpoint's url and sealed secret come with it."""

    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    body: str
    attempts: int  # made before this one
    url: str
    secret_ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    created_at: datetime


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(
        row["id"],
        row["merchant_id"],
        row["url"],
        tuple(row["events"]),
        bytes(row["secret_ciphertext"]),
        row["created_at"],
    )


async def insert_endpoint(conn: asyncpg.Connection, endpoint: Endpoint) -> None:
    await conn.execute(
        "INSERT INTO merchants.webhook_endpoints "
        "(id, merchant_id, url, events, secret_ciphertext, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        endpoint.id,
        endpoint.merchant_id,
        endpoint.url,
        list(endpoint.events),
        endpoint.secret_ciphertext,
        endpoint.created_at,
    )


async def get_endpoint(
    conn: asyncpg.Connection, endpoint_id: str, merchant_id: str
) -> Endpoint | None:
    row = await conn.fetchrow(
        "SELECT * FROM merchants.webhook_endpoints "
        "WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL",
        endpoint_id,
        merchant_id,
    )
    return None if row is None else _endpoint(row)


async def list_endpoints(
    conn: asyncpg.Connection, merchant_id: str, *, after: str | None, limit: int
) -> list[Endpoint]:
    rows = await conn.fetch(
        """
        SELECT * FROM merchants.webhook_endpoints
        WHERE merchant_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        merchant_id,
        after,
        limit,
    )
    return [_endpoint(r) for r in rows]


async def subscribed_endpoints(
    conn: asyncpg.Connection, merchant_id: str, event_type: str
) -> list[Endpoint]:
    rows = await conn.fetch(
        """
        SELECT * FROM merchants.webhook_endpoints
        WHERE merchant_id = $1 AND deleted_at IS NULL AND ($2 = ANY(events) OR '*' = ANY(events))
        ORDER BY id
        """,
        merchant_id,
        event_type,
    )
    return [_endpoint(r) for r in rows]


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: str, at: datetime) -> None:
    """Deleted (the row stays), and whatever it still had to receive is canceled."""
    await conn.execute(
        "UPDATE merchants.webhook_endpoints SET deleted_at = $2 WHERE id = $1", endpoint_id, at
    )
    await conn.execute(
        "UPDATE merchants.webhook_jobs SET status = 'canceled', next_attempt_at = NULL "
        "WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
    )


async def insert_jobs(
    conn: asyncpg.Connection,
    endpoint_ids: Sequence[str],
    *,
    event_id: str,
    event_type: str,
    aggregate_id: str,
    body: str,
    redelivery: bool,
    at: datetime,
) -> None:
    """One job per endpoint, due at `at`; an event already queued for an endpoint (not as
    a redelivery) is not queued again."""
    await conn.execute(
        """
        INSERT INTO merchants.webhook_jobs (endpoint_id, event_id, event_type, aggregate_id,
            body, redelivery, status, next_attempt_at, created_at)
        SELECT e, $2, $3, $4, $5, $6, 'pending', $7, $7 FROM unnest($1::text[]) AS e
        ON CONFLICT (endpoint_id, event_id) WHERE NOT redelivery DO NOTHING
        """,
        list(endpoint_ids),
        event_id,
        event_type,
        aggregate_id,
        body,
        redelivery,
        at,
    )


# A pending job is at the head of its chain when no earlier job of its endpoint and
# aggregate is pending; only heads are due.
_HEAD = """
    j.status = 'pending' AND NOT EXISTS (
        SELECT 1 FROM merchants.webhook_jobs e
        WHERE e.status = 'pending' AND e.endpoint_id = j.endpoint_id
          AND e.aggregate_id = j.aggregate_id AND e.id < j.id)
"""


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        f"SELECT min(j.next_attempt_at) FROM merchants.webhook_jobs j WHERE {_HEAD}"
    )
    return due


async def claim_jobs(
    conn: asyncpg.Connection, now: datetime, until: datetime, limit: int
) -> list[Job]:
    """Due heads, leased until `until` (a job whose lease runs out is sent again)."""
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT j.id FROM merchants.webhook_jobs j
            WHERE j.next_attempt_at <= $1 AND {_HEAD}
            ORDER BY j.next_attempt_at, j.id LIMIT $3 FOR UPDATE OF j SKIP LOCKED
        )
        UPDATE merchants.webhook_jobs j SET next_attempt_at = $2
        FROM due, merchants.webhook_endpoints w
        WHERE j.id = due.id AND w.id = j.endpoint_id
        RETURNING j.id, j.endpoint_id, j.event_id, j.event_type, j.body, j.attempts, w.url,
                  w.secret_ciphertext
        """,
        now,
        until,
        limit,
    )
    return [
        Job(
            r["id"],
            r["endpoint_id"],
            r["event_id"],
            r["event_type"],
            r["body"],
            r["attempts"],
            r["url"],
            bytes(r["secret_ciphertext"]),
        )
        for r in rows
    ]


async def record_attempt(
    conn: asyncpg.Connection,
    job: Job,
    *,
    delivery_id: str,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
    delivered: bool,
    at: datetime,
) -> bool:
    """The attempt's delivery row and the job's new state; False if the job was no longer
    this attempt's (another worker recorded it after this one's lease ran out)."""
    attempt = job.attempts + 1
    status = "delivered" if delivered else ("pending" if next_attempt_at else "failed")
    moved = await conn.fetchval(
        "UPDATE merchants.webhook_jobs SET attempts = $2, status = $3, next_attempt_at = $4 "
        "WHERE id = $1 AND attempts = $5 AND status = 'pending' RETURNING id",
        job.id,
        attempt,
        status,
        next_attempt_at,
        job.attempts,
    )
    if moved is None:
        return False
    await conn.execute(
        "INSERT INTO merchants.webhook_deliveries (id, endpoint_id, job_id, event_id, "
        "event_type, attempt, status_code, error, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        delivery_id,
        job.endpoint_id,
        job.id,
        job.event_id,
        job.event_type,
        attempt,
        status_code,
        error,
        at,
    )
    return True


async def list_deliveries(
    conn: asyncpg.Connection, endpoint_id: str, *, after: str | None, limit: int
) -> list[Delivery]:
    rows = await conn.fetch(
        """
        SELECT * FROM merchants.webhook_deliveries
        WHERE endpoint_id = $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        endpoint_id,
        after,
        limit,
    )
    return [
        Delivery(
            r["id"],
            r["event_id"],
            r["event_type"],
            r["attempt"],
            r["status_code"],
            r["error"],
            r["created_at"],
        )
        for r in rows
    ]
