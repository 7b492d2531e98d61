"""The card gateway protocol: tokenize, charge, refund; every money call idempotent by key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"  # a business decline; see `code`
    TRANSIENT = "transient"  # timeout, 5xx, processing_error: safe to retry with the same key


@dataclass(frozen=True, slots=True)
class CardToken:
    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: ChargeOutcome
    code: str | None  # e.g. card_declined, insufficient_funds, processing_error, timeout
    gateway_reference: str | None


class CardRejected(Exception):
    """The gateway refused to tokenize the card (invalid number, expired...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ProviderUnavailable(Exception):
    """The provider did not answer usefully (timeout, 5xx, connection refused)."""


class CardGateway(Protocol):
    async def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken: ...

    async def charge(
        self, token: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult: ...

    async def refund(
        self, charge_reference: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult: ...
