"""All SQL of publishable keys."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bnpl.merchants.publishable.domain import PublishableKey

_COLUMNS = "id, merchant_id, key, livemode, created_at, revoked_at"


def _key(row: asyncpg.Record) -> PublishableKey:
    return PublishableKey(
        id=row["id"],
        merchant_id=row["merchant_id"],
        key=row["key"],
        livemode=row["livemode"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert(conn: asyncpg.Connection, key: PublishableKey) -> None:
    await conn.execute(
        "INSERT INTO merchants.publishable_keys (id, merchant_id, key, livemode, created_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        key.id,
        key.merchant_id,
        key.key,
        key.livemode,
        key.created_at,
    )


async def list_for(
    conn: asyncpg.Connection, merchant_id: str, *, after: str | None, limit: int
) -> list[PublishableKey]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM merchants.publishable_keys "
        "WHERE merchant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        merchant_id,
        after,
        limit,
    )
    return [_key(r) for r in rows]


async def revoke(conn: asyncpg.Connection, merchant_id: str, key_id: str, at: datetime) -> bool:
    """Revoke the key; False if the merchant has no such key."""
    row = await conn.fetchrow(
        "UPDATE merchants.publishable_keys SET revoked_at = coalesce(revoked_at, $3) "
        "WHERE id = $1 AND merchant_id = $2 RETURNING id",
        key_id,
        merchant_id,
        at,
    )
    return row is not None


async def resolve(conn: asyncpg.Connection, key: str) -> str | None:
    """The merchant id of a live publishable key whose merchant is active."""
    found: str | None = await conn.fetchval(
        """
        SELECT k.merchant_id
        FROM merchants.publishable_keys k JOIN merchants.merchants m ON m.id = k.merchant_id
        WHERE k.key = $1 AND k.revoked_at IS NULL AND m.status = 'active'
        """,
        key,
    )
    return found
