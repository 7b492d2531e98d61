"""Onboarding endpoints (operator): a merchant's business verification."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bnpl.gateway import OperatorP, runtime
from bnpl.onboarding import service
from bnpl.onboarding.schemas import BusinessVerificationOut

router = APIRouter(tags=["onboarding"])


@router.get(
    "/v1/onboarding/business_verifications/{merchant_id}", response_model=BusinessVerificationOut
)
async def get_business_verification(
    merchant_id: str, request: Request, _: OperatorP
) -> BusinessVerificationOut:
    """The merchant's business verification (KYB): status, provider reference, reason."""
    async with runtime(request).db.connection() as conn:
        return BusinessVerificationOut.of(await service.get_verification(conn, merchant_id))
