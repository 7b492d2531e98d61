"""Onboarding use cases: business verification (KYB) of a merchant application.

Writes state, outbox events and audit records in the caller's transaction; never commits.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

import asyncpg

from bnpl import audit
from bnpl.kit.errors import not_found
from bnpl.kit.ids import new_id
from bnpl.onboarding import events, repository
from bnpl.onboarding.domain import (
    Application,
    BusinessVerification,
    VerificationStatus,
    outcome,
)
from bnpl.providers import BusinessVerifier

log = logging.getLogger(__name__)


async def verify_business(
    conn: asyncpg.Connection,
    kyb: BusinessVerifier,
    application: Application,
    *,
    at: datetime,
) -> BusinessVerification:
    """Verify an applicant with the KYB provider and record and announce the outcome.

    Safe to run again for the same merchant: a decided verification is returned as it is,
    and the provider call is idempotent by the merchant id. `ProviderUnavailable` propagates
    (the caller's transaction rolls back and the consumer retries with backoff).
    """
    await repository.insert_pending(
        conn,
        BusinessVerification(
            id=new_id("kyb"),
            merchant_id=application.merchant_id,
            legal_name=application.legal_name,
            country=application.country,
            website=application.website,
            status=VerificationStatus.PENDING,
            provider_reference=None,
            reason=None,
            requested_at=at,
            decided_at=None,
        ),
    )
    verification = await repository.get_for_merchant(conn, application.merchant_id, for_update=True)
    assert verification is not None
    if verification.decided:
        return verification

    check = await kyb.verify_business(
        subject_id=application.merchant_id,
        legal_name=application.legal_name,
        country=application.country,
        website=application.website,
    )
    status, reason = outcome(check.status, check.reason)
    await repository.record_outcome(
        conn, verification.id, status, provider_reference=check.reference, reason=reason, at=at
    )
    verification = replace(
        verification,
        status=status,
        provider_reference=check.reference,
        reason=reason,
        decided_at=at,
    )
    await events.emit_outcome(conn, verification, at=at)
    await audit.record(
        conn,
        actor="system",
        action=f"business_verification.{status.value}",
        entity_id=application.merchant_id,
        at=at,
        data={
            "verification_id": verification.id,
            "provider_reference": check.reference,
            "reason": reason,
        },
    )
    log.info(
        "business verification decided",
        extra={"merchant_id": application.merchant_id, "status": status.value},
    )
    return verification


async def get_verification(conn: asyncpg.Connection, merchant_id: str) -> BusinessVerification:
    verification = await repository.get_for_merchant(conn, merchant_id)
    if verification is None:
        raise not_found("business verification")
    return verification
