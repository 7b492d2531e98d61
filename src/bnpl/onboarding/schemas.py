"""Response models of the onboarding API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from bnpl.onboarding.domain import BusinessVerification


class BusinessVerificationOut(BaseModel):
    id: str
    merchant_id: str
    status: str
    provider_reference: str | None
    reason: str | None
    requested_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, v: BusinessVerification) -> BusinessVerificationOut:
        return cls(
            id=v.id,
            merchant_id=v.merchant_id,
            status=v.status.value,
            provider_reference=v.provider_reference,
            reason=v.reason,
            requested_at=v.requested_at,
            decided_at=v.decided_at,
        )
