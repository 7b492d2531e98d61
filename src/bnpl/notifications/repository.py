"""Notification tables (schema `notifications`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    consumer_id: str
    channel: str
    template: str
    subject: str
    body: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Reminder:
    plan_id: str
    seq: int
    consumer_id: str
    due_date: date
    amount: int
    currency: str


def _notification(r: asyncpg.Record) -> Notification:
    return Notification(
        r["id"],
        r["consumer_id"],
        r["channel"],
        r["template"],
        r["subject"],
        r["body"],
        r["status"],
        r["attempts"],
        r["created_at"],
        r["sent_at"],
        r["error"],
    )


async def queue(
    conn: asyncpg.Connection,
    rows: Sequence[tuple[str, str, str, str, str, str, str]],
    at: datetime,
) -> None:
    """(id, consumer, channel, template, subject, body, cause) rows, queued now; a cause's
    template on a channel is queued once."""
    if rows:
        await conn.execute(
            """
            INSERT INTO notifications.notifications (id, consumer_id, channel, template,
                subject, body, cause, status, next_attempt_at, created_at)
            SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, 'queued', $2, $2
            FROM jsonb_array_elements($1::jsonb) AS r
            ON CONFLICT (cause, template, channel) DO NOTHING
            """,
            [list(row) for row in rows],
            at,
        )


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        "SELECT min(next_attempt_at) FROM notifications.notifications WHERE status = 'queued'"
    )
    return due


async def claim(
    conn: asyncpg.Connection, now: datetime, until: datetime, limit: int
) -> list[Notification]:
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT id FROM notifications.notifications
            WHERE status = 'queued' AND next_attempt_at <= $1
            ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
        )
        UPDATE notifications.notifications n SET next_attempt_at = $2
        FROM due WHERE n.id = due.id
        RETURNING n.*
        """,
        now,
        until,
        limit,
    )
    return [_notification(r) for r in rows]


async def record_many(conn: asyncpg.Connection, attempts: Sequence[Attempt], at: datetime) -> None:
    """Each attempt's outcome, in one statement (see `record`)."""
    await conn.execute(
        """
        UPDATE notifications.notifications n
        SET status = a.status, attempts = n.attempts + 1, next_attempt_at = a.retry_at,
            provider_reference = a.reference, error = a.error,
            sent_at = CASE WHEN a.status = 'sent' THEN $2::timestamptz END
        FROM (
            SELECT r->>0 AS id, r->>1 AS status, (r->>2)::timestamptz AS retry_at,
                   r->>3 AS reference, r->>4 AS error, (r->>5)::int AS attempts
            FROM jsonb_array_elements($1::jsonb) AS r
        ) a
        WHERE n.id = a.id AND n.status = 'queued' AND n.attempts = a.attempts
        """,
        [
            [
                a.notification.id,
                "sent" if a.sent else ("queued" if a.retry_at else "failed"),
                None if a.sent or a.retry_at is None else a.retry_at.isoformat(),
                a.reference,
                a.error,
                a.notification.attempts,
            ]
            for a in attempts
        ],
        at,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send's outcome: `retry_at` when it is to be tried again."""

    notification: Notification
    sent: bool
    reference: str | None
    error: str | None
    retry_at: datetime | None


async def list_for(
    conn: asyncpg.Connection, consumer_id: str, *, after: str | None, limit: int
) -> list[Notification]:
    rows = await conn.fetch(
        """
        SELECT * FROM notifications.notifications
        WHERE consumer_id = $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        consumer_id,
        after,
        limit,
    )
    return [_notification(r) for r in rows]


# --------------------------------------------------------------------------- reminders


async def set_reminders(
    conn: asyncpg.Connection,
    plan_id: str,
    pending: Sequence[tuple[int, str, date, int, str, datetime]],
    *,
    keep: Sequence[int],
) -> None:
    """The plan's pending reminders: (seq, consumer, due date, amount, currency, remind at)
    are added (or updated, if still pending); any other pending one not in `keep` is canceled."""
    await conn.execute(
        """
        WITH upserted AS (
            INSERT INTO notifications.reminders (plan_id, seq, consumer_id, due_date, amount,
                currency, remind_at, status)
            SELECT $1, (r->>0)::int, r->>1, (r->>2)::date, (r->>3)::bigint, r->>4,
                   (r->>5)::timestamptz, 'pending'
            FROM jsonb_array_elements($2::jsonb) AS r
            ON CONFLICT (plan_id, seq) DO UPDATE SET
                due_date = EXCLUDED.due_date, amount = EXCLUDED.amount,
                remind_at = EXCLUDED.remind_at
            WHERE notifications.reminders.status = 'pending'
        )
        UPDATE notifications.reminders SET status = 'canceled'
        WHERE plan_id = $1 AND status = 'pending' AND NOT (seq = ANY($3::int[]))
        """,
        plan_id,
        [
            [seq, consumer, due.isoformat(), amount, currency, remind_at.isoformat()]
            for seq, consumer, due, amount, currency, remind_at in pending
        ],
        list(keep),
    )


async def cancel_reminder(conn: asyncpg.Connection, plan_id: str, seq: int) -> None:
    await conn.execute(
        "UPDATE notifications.reminders SET status = 'canceled' "
        "WHERE plan_id = $1 AND seq = $2 AND status = 'pending'",
        plan_id,
        seq,
    )


async def next_reminder(conn: asyncpg.Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        "SELECT min(remind_at) FROM notifications.reminders WHERE status = 'pending'"
    )
    return due


async def claim_reminders(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Reminder]:
    """Due reminders, marked sent in the caller's transaction (their notifications are queued
    in it too)."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT plan_id, seq FROM notifications.reminders
            WHERE status = 'pending' AND remind_at <= $1
            ORDER BY remind_at, plan_id, seq LIMIT $2 FOR UPDATE SKIP LOCKED
        )
        UPDATE notifications.reminders r SET status = 'sent'
        FROM due WHERE r.plan_id = due.plan_id AND r.seq = due.seq
        RETURNING r.*
        """,
        now,
        limit,
    )
    return [
        Reminder(
            r["plan_id"], r["seq"], r["consumer_id"], r["due_date"], r["amount"], r["currency"]
        )
        for r in rows
    ]
