"""Third-party providers: one protocol per kind, a sandbox simulator and HTTP adapters."""

from __future__ import annotations

from dataclasses import dataclass

from bnpl.providers.gateway.base import (
    CardGateway,
    CardRejected,
    CardToken,
    ChargeOutcome,
    ChargeResult,
    ProviderUnavailable,
)
from bnpl.providers.kyb.base import BusinessCheck, BusinessVerifier
from bnpl.providers.kyc.base import IdentityCheck, IdentityVerifier


@dataclass
class Providers:
    gateway: CardGateway
    kyc: IdentityVerifier
    kyb: BusinessVerifier


__all__ = [
    "BusinessCheck",
    "BusinessVerifier",
    "CardGateway",
    "CardRejected",
    "CardToken",
    "ChargeOutcome",
    "ChargeResult",
    "IdentityCheck",
    "IdentityVerifier",
    "Providers",
    "ProviderUnavailable",
]
