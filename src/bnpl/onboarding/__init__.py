"""Onboarding: merchant applications and their business verification (KYB).

It hears of applications through `merchant.applied` and answers with
`onboarding.business_verified` / `onboarding.business_rejected`; it imports no other context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bnpl.onboarding import handlers
from bnpl.onboarding.domain import VerificationStatus

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

__all__ = ["VerificationStatus", "register"]


def register(rt: Runtime) -> None:
    """Subscribe onboarding's consumer `onboarding.verify_business` to `merchant.applied`."""
    handlers.subscribe(rt)
