"""Pure onboarding rules: a merchant application and its business verification (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

DEFAULT_REJECTION_REASON: Final = "business_verification_failed"


class VerificationStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class MalformedApplication(ValueError):
    """An application event lacks what verification needs."""


@dataclass(frozen=True, slots=True)
class Application:
    """What business verification needs to know about an applicant."""

    merchant_id: str
    legal_name: str
    country: str
    website: str | None

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> Application:
        try:
            merchant_id, legal_name, country = (
                data["merchant_id"],
                data["legal_name"],
                data["country"],
            )
        except KeyError as exc:
            raise MalformedApplication(f"application lacks {exc.args[0]!r}") from exc
        website = data.get("website")
        if not all(isinstance(v, str) and v for v in (merchant_id, legal_name, country)):
            raise MalformedApplication("merchant_id, legal_name and country must be strings")
        if website is not None and not isinstance(website, str):
            raise MalformedApplication("website must be a string")
        return cls(merchant_id, legal_name, country, website)


@dataclass(frozen=True, slots=True)
class BusinessVerification:
    id: str
    merchant_id: str
    legal_name: str
    country: str
    website: str | None
    status: VerificationStatus
    provider_reference: str | None
    reason: str | None
    requested_at: datetime
    decided_at: datetime | None

    @property
    def decided(self) -> bool:
        return self.status is not VerificationStatus.PENDING


def outcome(
    provider_status: str, provider_reason: str | None
) -> tuple[VerificationStatus, str | None]:
    """The verification status and reason for a provider's answer (anything but an explicit
    `verified` is a rejection, with a reason always given)."""
    if provider_status == "verified":
        return VerificationStatus.VERIFIED, None
    return VerificationStatus.REJECTED, provider_reason or DEFAULT_REJECTION_REASON
