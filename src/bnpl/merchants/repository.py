"""All SQL of the merchants context (schema `merchants`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bnpl.merchants.domain import ApiKey, Config, MerchantProfile, MerchantStatus

_MERCHANT_COLUMNS = """
    id, status, legal_name, website, email, country, mcc, default_currency,
    account_ciphertext, account_last4, routing_number, plans, mdr_bps, fixed_fee,
    monthly_apr_bps, min_amount, max_amount, rejection_reason, created_at, updated_at
"""


def _merchant(row: asyncpg.Record) -> MerchantProfile:
    return MerchantProfile(
        id=row["id"],
        status=MerchantStatus(row["status"]),
        legal_name=row["legal_name"],
        website=row["website"],
        email=row["email"],
        country=row["country"],
        mcc=row["mcc"],
        default_currency=row["default_currency"],
        account_ciphertext=bytes(row["account_ciphertext"]),
        account_last4=row["account_last4"],
        routing_number=row["routing_number"],
        config=Config(
            plans=tuple(row["plans"]),
            mdr_bps=row["mdr_bps"],
            fixed_fee=row["fixed_fee"],
            monthly_apr_bps=row["monthly_apr_bps"],
            min_amount=row["min_amount"],
            max_amount=row["max_amount"],
        ),
        rejection_reason=row["rejection_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_merchant(conn: asyncpg.Connection, m: MerchantProfile) -> None:
    await conn.execute(
        """
        INSERT INTO merchants.merchants (
            id, status, legal_name, website, email, country, mcc, default_currency,
            account_ciphertext, account_last4, routing_number, plans, mdr_bps, fixed_fee,
            monthly_apr_bps, min_amount, max_amount, rejection_reason, created_at, updated_at
        ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                  $18, $19, $20)
        """,
        m.id,
        m.status.value,
        m.legal_name,
        m.website,
        m.email,
        m.country,
        m.mcc,
        m.default_currency,
        m.account_ciphertext,
        m.account_last4,
        m.routing_number,
        list(m.config.plans),
        m.config.mdr_bps,
        m.config.fixed_fee,
        m.config.monthly_apr_bps,
        m.config.min_amount,
        m.config.max_amount,
        m.rejection_reason,
        m.created_at,
        m.updated_at,
    )


async def get_merchant(
    conn: asyncpg.Connection, merchant_id: str, *, for_update: bool = False
) -> MerchantProfile | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_MERCHANT_COLUMNS} FROM merchants.merchants WHERE id = $1{lock}", merchant_id
    )
    return _merchant(row) if row is not None else None


async def list_merchants(
    conn: asyncpg.Connection, *, status: str | None, after: str | None, limit: int
) -> list[MerchantProfile]:
    rows = await conn.fetch(
        f"""
        SELECT {_MERCHANT_COLUMNS} FROM merchants.merchants
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        status,
        after,
        limit,
    )
    return [_merchant(r) for r in rows]


async def update_config(
    conn: asyncpg.Connection, merchant_id: str, config: Config, at: datetime
) -> None:
    await conn.execute(
        """
        UPDATE merchants.merchants
        SET plans = $2, mdr_bps = $3, fixed_fee = $4, monthly_apr_bps = $5, min_amount = $6,
            max_amount = $7, updated_at = $8
        WHERE id = $1
        """,
        merchant_id,
        list(config.plans),
        config.mdr_bps,
        config.fixed_fee,
        config.monthly_apr_bps,
        config.min_amount,
        config.max_amount,
        at,
    )


async def update_status(
    conn: asyncpg.Connection,
    merchant_id: str,
    status: MerchantStatus,
    at: datetime,
    *,
    rejection_reason: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE merchants.merchants
        SET status = $2, rejection_reason = $3, updated_at = $4
        WHERE id = $1
        """,
        merchant_id,
        status.value,
        rejection_reason,
        at,
    )


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        merchant_id=row["merchant_id"],
        livemode=row["livemode"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert_api_key(conn: asyncpg.Connection, key: ApiKey, secret_hash: bytes) -> None:
    await conn.execute(
        """
        INSERT INTO merchants.api_keys (id, merchant_id, secret_hash, livemode, created_at)
        VALUES ($1, $2, $3, $4, $5)
        """,
        key.id,
        key.merchant_id,
        secret_hash,
        key.livemode,
        key.created_at,
    )


async def list_api_keys(
    conn: asyncpg.Connection, merchant_id: str, *, after: str | None, limit: int
) -> list[ApiKey]:
    rows = await conn.fetch(
        "SELECT id, merchant_id, livemode, created_at, revoked_at FROM merchants.api_keys "
        "WHERE merchant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        merchant_id,
        after,
        limit,
    )
    return [_key(r) for r in rows]


async def get_api_key(
    conn: asyncpg.Connection, merchant_id: str, key_id: str, *, for_update: bool = False
) -> ApiKey | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        "SELECT id, merchant_id, livemode, created_at, revoked_at FROM merchants.api_keys "
        f"WHERE id = $1 AND merchant_id = $2{lock}",
        key_id,
        merchant_id,
    )
    return _key(row) if row is not None else None


async def revoke_api_key(conn: asyncpg.Connection, key_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE merchants.api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        key_id,
        at,
    )


async def resolve_api_key(
    conn: asyncpg.Connection, secret_hash: bytes
) -> tuple[str, str, MerchantStatus] | None:
    """(key id, merchant id, merchant status) of the live key with this hash.

    One probe of the unique index on `secret_hash` and a primary-key join; no cache, so a
    revocation or a suspension takes effect on the very next request.
    """
    row = await conn.fetchrow(
        """
        SELECT k.id AS key_id, k.merchant_id, m.status
        FROM merchants.api_keys k JOIN merchants.merchants m ON m.id = k.merchant_id
        WHERE k.secret_hash = $1 AND k.revoked_at IS NULL
        """,
        secret_hash,
    )
    if row is None:
        return None
    return row["key_id"], row["merchant_id"], MerchantStatus(row["status"])
