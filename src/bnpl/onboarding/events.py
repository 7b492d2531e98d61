"""The events onboarding consumes and emits (payload version 1; fields are only ever added).

Onboarding and merchants do not import each other: they share these type names and payloads.

- consumes `merchant.applied`: `{"merchant_id", "legal_name", "country", "website"}`;
- emits (internal) `onboarding.business_verified` / `onboarding.business_rejected`:
  `{"merchant_id", "verification_id", "status", "provider_reference", "reason"}`,
  aggregate id the merchant id, so a merchant's events stay in order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from bnpl.messaging import publish
from bnpl.onboarding.domain import BusinessVerification, VerificationStatus

MERCHANT_APPLIED: Final = "merchant.applied"
BUSINESS_VERIFIED: Final = "onboarding.business_verified"
BUSINESS_REJECTED: Final = "onboarding.business_rejected"


async def emit_outcome(
    conn: asyncpg.Connection, verification: BusinessVerification, *, at: datetime
) -> str:
    verified = verification.status is VerificationStatus.VERIFIED
    return await publish(
        conn,
        BUSINESS_VERIFIED if verified else BUSINESS_REJECTED,
        verification.merchant_id,
        {
            "merchant_id": verification.merchant_id,
            "verification_id": verification.id,
            "status": verification.status.value,
            "provider_reference": verification.provider_reference,
            "reason": verification.reason,
        },
        occurred_at=at,
    )
