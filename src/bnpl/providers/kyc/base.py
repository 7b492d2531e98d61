"""The ID-verification (KYC) provider protocol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    reference: str  # the provider's id for the check
    status: Literal["verified", "rejected"]
    reason: str | None


class IdentityVerifier(Protocol):
    async def verify_identity(
        self,
        *,
        subject_id: str,
        first_name: str,
        last_name: str,
        date_of_birth: date,
        country: str,
    ) -> IdentityCheck:
        """Idempotent by `subject_id`."""
        ...
