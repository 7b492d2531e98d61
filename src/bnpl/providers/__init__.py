"""Third-party providers: one protocol per kind, a sandbox simulator and HTTP adapters."""

from __future__ import annotations

from dataclasses import dataclass

from bnpl.providers.breaker import BreakerState, CircuitBreaker, CircuitOpen
from bnpl.providers.bureau.base import BureauReport, CreditBureau
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
from bnpl.providers.messages.base import MessageResult, PushSender, SmsSender
from bnpl.providers.payouts.base import PayoutProvider, PayoutResult


@dataclass
class Providers:
    gateway: CardGateway
    kyc: IdentityVerifier
    kyb: BusinessVerifier
    bureau: CreditBureau
    payouts: PayoutProvider
    sms: SmsSender
    push: PushSender


__all__ = [
    "BreakerState",
    "BureauReport",
    "BusinessCheck",
    "BusinessVerifier",
    "CardGateway",
    "CardRejected",
    "CardToken",
    "ChargeOutcome",
    "ChargeResult",
    "CircuitBreaker",
    "CircuitOpen",
    "CreditBureau",
    "IdentityCheck",
    "IdentityVerifier",
    "MessageResult",
    "PayoutProvider",
    "PayoutResult",
    "ProviderUnavailable",
    "Providers",
    "PushSender",
    "SmsSender",
]
