"""The business-verification (KYB) provider protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class BusinessCheck:
    reference: str
    status: Literal["verified", "rejected"]
    reason: str | None


class BusinessVerifier(Protocol):
    async def verify_business(
        self, *, subject_id: str, legal_name: str, country: str, website: str | None
    ) -> BusinessCheck:
        """Idempotent by `subject_id`."""
        ...
