"""The events merchants emits, and the onboarding events it consumes.

Payloads are version 1. They only ever gain fields; a change that would break a reader gets a
new event type instead. Every event carries the merchant id on its outbox row, so a merchant
sees its own events, and uses the merchant id as aggregate id, so they arrive in order.
`merchant.applied` is internal (it starts business verification); the others are public.
No payload ever carries the settlement account number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import asyncpg

from bnpl.merchants.domain import MerchantProfile
from bnpl.merchants.schemas import MerchantOut
from bnpl.messaging import publish

MERCHANT_APPLIED: Final = "merchant.applied"
MERCHANT_ACTIVATED: Final = "merchant.activated"
MERCHANT_REJECTED: Final = "merchant.rejected"
MERCHANT_SUSPENDED: Final = "merchant.suspended"
MERCHANT_REACTIVATED: Final = "merchant.reactivated"
MERCHANT_CONFIG_UPDATED: Final = "merchant.config_updated"

# Consumed from onboarding (by type name: the two contexts do not import each other).
BUSINESS_VERIFIED: Final = "onboarding.business_verified"
BUSINESS_REJECTED: Final = "onboarding.business_rejected"


def applied_payload(merchant: MerchantProfile) -> dict[str, Any]:
    """What business verification needs: `merchant_id`, `legal_name`, `country`, `website`."""
    return {
        "merchant_id": merchant.id,
        "legal_name": merchant.legal_name,
        "country": merchant.country,
        "website": merchant.website,
        "mcc": merchant.mcc,
    }


def merchant_payload(merchant: MerchantProfile) -> dict[str, Any]:
    """The merchant as the API shows it (account number never included)."""
    data: dict[str, Any] = MerchantOut.of(merchant).model_dump(mode="json")
    data["merchant_id"] = merchant.id
    return data


async def emit(
    conn: asyncpg.Connection, type: str, merchant: MerchantProfile, *, at: datetime
) -> str:
    data = applied_payload(merchant) if type == MERCHANT_APPLIED else merchant_payload(merchant)
    return await publish(conn, type, merchant.id, data, occurred_at=at, merchant_id=merchant.id)
