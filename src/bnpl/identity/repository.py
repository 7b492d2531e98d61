"""All SQL of the identity context (schema `identity`). Encrypted columns go in and come out as
bytes: encryption and decryption are the service's business, not the repository's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from asyncpg import Record

_CONSUMER_COLUMNS = """
    id, email, first_name, last_name, phone_enc, date_of_birth_enc, address_enc,
    kyc_status, created_at
"""

# --- consumers --------------------------------------------------------------------------------


async def insert_consumer(
    conn: asyncpg.Connection,
    *,
    consumer_id: str,
    email: str,
    password_hash: str,
    first_name: str,
    last_name: str,
    phone_enc: bytes | None,
    date_of_birth_enc: bytes,
    address_enc: bytes,
    at: datetime,
) -> Record | None:
    """Insert a consumer; None when the email is taken (the unique index decides races)."""
    row: Record | None = await conn.fetchrow(
        f"""
        INSERT INTO identity.consumers
            (id, email, password_hash, first_name, last_name, phone_enc, date_of_birth_enc,
             address_enc, kyc_status, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9)
        ON CONFLICT ((lower(email))) DO NOTHING
        RETURNING {_CONSUMER_COLUMNS}
        """,
        consumer_id,
        email,
        password_hash,
        first_name,
        last_name,
        phone_enc,
        date_of_birth_enc,
        address_enc,
        at,
    )
    return row


async def get_consumer(
    conn: asyncpg.Connection, consumer_id: str, *, for_update: bool = False
) -> Record | None:
    lock = "FOR UPDATE" if for_update else ""
    row: Record | None = await conn.fetchrow(
        f"SELECT {_CONSUMER_COLUMNS} FROM identity.consumers WHERE id = $1 {lock}", consumer_id
    )
    return row


async def get_consumers(conn: asyncpg.Connection, consumer_ids: Sequence[str]) -> list[Record]:
    rows: list[Record] = await conn.fetch(
        f"SELECT {_CONSUMER_COLUMNS} FROM identity.consumers WHERE id = ANY($1::text[])",
        list(consumer_ids),
    )
    return rows


async def consumer_id_by_email(conn: asyncpg.Connection, email: str) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT id FROM identity.consumers WHERE lower(email) = lower($1)", email
    )
    return found


async def credentials_by_email(conn: asyncpg.Connection, email: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT id, password_hash FROM identity.consumers WHERE lower(email) = lower($1)", email
    )
    return row


async def update_password_hash(
    conn: asyncpg.Connection, consumer_id: str, password_hash: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE identity.consumers SET password_hash = $2, updated_at = $3 WHERE id = $1",
        consumer_id,
        password_hash,
        at,
    )


async def set_kyc_result(
    conn: asyncpg.Connection,
    consumer_id: str,
    *,
    status: str,
    reference: str,
    reason: str | None,
    at: datetime,
) -> bool:
    """Record the KYC outcome of a pending consumer; False if it was no longer pending."""
    done = await conn.fetchval(
        """
        UPDATE identity.consumers
        SET kyc_status = $2, kyc_reference = $3, kyc_reason = $4, kyc_checked_at = $5,
            updated_at = $5
        WHERE id = $1 AND kyc_status = 'pending'
        RETURNING true
        """,
        consumer_id,
        status,
        reference,
        reason,
        at,
    )
    return bool(done)


# --- sessions and refresh tokens ---------------------------------------------------------------


async def insert_session(
    conn: asyncpg.Connection, session_id: str, consumer_id: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO identity.sessions (id, consumer_id, created_at) VALUES ($1, $2, $3)",
        session_id,
        consumer_id,
        at,
    )


async def insert_refresh_token(
    conn: asyncpg.Connection,
    *,
    token_hash: bytes,
    session_id: str,
    consumer_id: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO identity.refresh_tokens
            (token_hash, session_id, consumer_id, issued_at, expires_at)
        VALUES ($1, $2, $3, $4, $5)
        """,
        token_hash,
        session_id,
        consumer_id,
        issued_at,
        expires_at,
    )


async def use_refresh_token(
    conn: asyncpg.Connection, token_hash: bytes, at: datetime
) -> Record | None:
    """Spend a refresh token once, atomically; None if unknown or already spent."""
    row: Record | None = await conn.fetchrow(
        """
        UPDATE identity.refresh_tokens SET used_at = $2
        WHERE token_hash = $1 AND used_at IS NULL
        RETURNING session_id, consumer_id, expires_at
        """,
        token_hash,
        at,
    )
    return row


async def spent_refresh_token(conn: asyncpg.Connection, token_hash: bytes) -> Record | None:
    """The session of a refresh token that was already spent (a reuse), if any."""
    row: Record | None = await conn.fetchrow(
        "SELECT session_id, consumer_id FROM identity.refresh_tokens "
        "WHERE token_hash = $1 AND used_at IS NOT NULL",
        token_hash,
    )
    return row


async def session_is_live(conn: asyncpg.Connection, session_id: str, consumer_id: str) -> bool:
    live = await conn.fetchval(
        "SELECT true FROM identity.sessions "
        "WHERE id = $1 AND consumer_id = $2 AND revoked_at IS NULL",
        session_id,
        consumer_id,
    )
    return bool(live)


async def revoke_session(
    conn: asyncpg.Connection, session_id: str, reason: str, at: datetime
) -> bool:
    """Revoke a live session (and with it every token of its family); False if it was not live."""
    done = await conn.fetchval(
        """
        UPDATE identity.sessions SET revoked_at = $3, revoked_reason = $2
        WHERE id = $1 AND revoked_at IS NULL
        RETURNING true
        """,
        session_id,
        reason,
        at,
    )
    return bool(done)


# --- payment methods --------------------------------------------------------------------------

_PM_COLUMNS = "id, consumer_id, type, brand, last4, exp_month, exp_year, created_at"


async def insert_payment_method(
    conn: asyncpg.Connection,
    *,
    pm_id: str,
    consumer_id: str,
    token_enc: bytes,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    at: datetime,
) -> Record:
    row: Record = await conn.fetchrow(
        f"""
        INSERT INTO identity.payment_methods
            (id, consumer_id, type, token_enc, brand, last4, exp_month, exp_year, created_at)
        VALUES ($1, $2, 'card', $3, $4, $5, $6, $7, $8)
        RETURNING {_PM_COLUMNS}
        """,
        pm_id,
        consumer_id,
        token_enc,
        brand,
        last4,
        exp_month,
        exp_year,
        at,
    )
    return row


async def list_payment_methods(
    conn: asyncpg.Connection, consumer_id: str, *, starting_after: str | None, limit: int
) -> list[Record]:
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT {_PM_COLUMNS} FROM identity.payment_methods
        WHERE consumer_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
        ORDER BY id
        LIMIT $3
        """,
        consumer_id,
        starting_after,
        limit,
    )
    return rows


async def soft_delete_payment_method(
    conn: asyncpg.Connection, consumer_id: str, pm_id: str, at: datetime
) -> bool:
    done = await conn.fetchval(
        """
        UPDATE identity.payment_methods SET deleted_at = $3
        WHERE id = $1 AND consumer_id = $2 AND deleted_at IS NULL
        RETURNING true
        """,
        pm_id,
        consumer_id,
        at,
    )
    return bool(done)


async def payment_method_token(
    conn: asyncpg.Connection, pm_id: str, consumer_id: str | None, *, include_deleted: bool
) -> Record | None:
    """The encrypted token of a payment method (of `consumer_id`, when given)."""
    row: Record | None = await conn.fetchrow(
        """
        SELECT id, token_enc FROM identity.payment_methods
        WHERE id = $1 AND ($2::text IS NULL OR consumer_id = $2)
          AND ($3 OR deleted_at IS NULL)
        """,
        pm_id,
        consumer_id,
        include_deleted,
    )
    return row


async def payment_method_tokens(
    conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]
) -> list[Record]:
    """The encrypted tokens of live payment methods, by `(consumer_id, pm_id)`."""
    rows: list[Record] = await conn.fetch(
        """
        SELECT pm.id, pm.token_enc FROM identity.payment_methods pm
        JOIN unnest($1::text[], $2::text[]) AS w (consumer_id, id)
          ON pm.id = w.id AND pm.consumer_id = w.consumer_id
        WHERE pm.id = ANY($2::text[]) AND pm.deleted_at IS NULL
        """,
        [c for c, _ in pairs],
        [p for _, p in pairs],
    )
    return rows
