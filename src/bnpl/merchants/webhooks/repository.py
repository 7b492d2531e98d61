"""Webhook tables (schema `merchants`): endpoints, jobs, deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    merchant_id: str
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


async def lock_and_count_endpoints(conn: asyncpg.Connection, merchant_id: str) -> int:
    """How many endpoints (not deleted) the merchant has, counted under a lock of the
    merchant's endpoints held until the transaction ends: two transactions adding an endpoint
    for one merchant count one after the other, so together they cannot pass a cap."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('merchants.webhook_endpoints:' || $1, 0))",
        merchant_id,
    )
    count: int = await conn.fetchval(
        "SELECT count(*) FROM merchants.webhook_endpoints "
        "WHERE merchant_id = $1 AND deleted_at IS NULL",
        merchant_id,
    )
    return count


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


async def live_endpoints(
    conn: asyncpg.Connection, merchant_ids: Sequence[str]
) -> dict[str, list[Endpoint]]:
    """The endpoints (not deleted) of these merchants, by merchant, in id order."""
    rows = await conn.fetch(
        "SELECT * FROM merchants.webhook_endpoints "
        "WHERE merchant_id = ANY($1::text[]) AND deleted_at IS NULL ORDER BY id",
        list(merchant_ids),
    )
    found: dict[str, list[Endpoint]] = {}
    for row in rows:
        found.setdefault(row["merchant_id"], []).append(_endpoint(row))
    return found


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
    conn: asyncpg.Connection,
    now: datetime,
    until: datetime,
    limit: int,
    *,
    busy: Mapping[str, int] | None = None,
    per_merchant: int | None = None,
) -> list[Job]:
    """Due heads, leased until `until` (a job whose lease runs out is sent again), fairly
    across merchants: each merchant's due heads are ranked by due time, and the lowest ranks
    are taken first, so every merchant with something due gets its first job out before any
    gets its second. `busy` counts the sends each merchant already has in flight (they count
    as its first ranks); with `per_merchant`, no merchant gets more than that in flight.

    The ranking reads a snapshot: the chosen rows are locked (`SKIP LOCKED`) in an outer
    query that checks again that they are still pending and due, so a job that another
    worker leased in between is left to it.
    """
    merchants = list(busy or {})
    rows = await conn.fetch(
        f"""
        WITH busy AS (
            SELECT * FROM unnest($4::text[], $5::int[]) AS b(merchant_id, sends)
        ), ranked AS (
            SELECT j.id, j.next_attempt_at, coalesce(busy.sends, 0) + row_number() OVER (
                PARTITION BY w.merchant_id ORDER BY j.next_attempt_at, j.id) AS slot
            FROM merchants.webhook_jobs j
            JOIN merchants.webhook_endpoints w ON w.id = j.endpoint_id
            LEFT JOIN busy ON busy.merchant_id = w.merchant_id
            WHERE j.next_attempt_at <= $1 AND {_HEAD}
              AND ($6::int IS NULL OR coalesce(busy.sends, 0) < $6)
        ), chosen AS (
            SELECT id FROM ranked WHERE $6::int IS NULL OR slot <= $6
            ORDER BY slot, next_attempt_at, id LIMIT $3
        ), locked AS (
            SELECT j.id FROM merchants.webhook_jobs j
            WHERE j.id IN (SELECT id FROM chosen)
              AND j.status = 'pending' AND j.next_attempt_at <= $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE merchants.webhook_jobs j SET next_attempt_at = $2
        FROM locked, merchants.webhook_endpoints w
        WHERE j.id = locked.id AND w.id = j.endpoint_id
        RETURNING j.id, j.endpoint_id, w.merchant_id, j.event_id, j.event_type, j.body,
                  j.attempts, w.url, w.secret_ciphertext
        """,
        now,
        until,
        limit,
        merchants,
        [busy[m] for m in merchants] if busy else [],
        per_merchant,
    )
    return [
        Job(
            r["id"],
            r["endpoint_id"],
            r["merchant_id"],
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
