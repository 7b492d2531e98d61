"""All SQL of the onboarding context (schema `onboarding`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bnpl.onboarding.domain import BusinessVerification, VerificationStatus

_COLUMNS = """
    id, merchant_id, legal_name, country, website, status, provider_reference, reason,
    requested_at, decided_at
"""


def _verification(row: asyncpg.Record) -> BusinessVerification:
    return BusinessVerification(
        id=row["id"],
        merchant_id=row["merchant_id"],
        legal_name=row["legal_name"],
        country=row["country"],
        website=row["website"],
        status=VerificationStatus(row["status"]),
        provider_reference=row["provider_reference"],
        reason=row["reason"],
        requested_at=row["requested_at"],
        decided_at=row["decided_at"],
    )


async def insert_pending(conn: asyncpg.Connection, v: BusinessVerification) -> None:
    """Record a pending verification unless the merchant already has one."""
    await conn.execute(
        """
        INSERT INTO onboarding.business_verifications
            (id, merchant_id, legal_name, country, website, status, requested_at)
        VALUES ($1, $2, $3, $4, $5, 'pending', $6)
        ON CONFLICT (merchant_id) DO NOTHING
        """,
        v.id,
        v.merchant_id,
        v.legal_name,
        v.country,
        v.website,
        v.requested_at,
    )


async def get_for_merchant(
    conn: asyncpg.Connection, merchant_id: str, *, for_update: bool = False
) -> BusinessVerification | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM onboarding.business_verifications WHERE merchant_id = $1{lock}",
        merchant_id,
    )
    return _verification(row) if row is not None else None


async def record_outcome(
    conn: asyncpg.Connection,
    verification_id: str,
    status: VerificationStatus,
    *,
    provider_reference: str,
    reason: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        """
        UPDATE onboarding.business_verifications
        SET status = $2, provider_reference = $3, reason = $4, decided_at = $5
        WHERE id = $1
        """,
        verification_id,
        status.value,
        provider_reference,
        reason,
        at,
    )
