"""Payments as plain data, and how gateway answers are classified (DOMAIN.md, "Collections")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bnpl.providers import ChargeOutcome, ChargeResult


class PaymentKind(StrEnum):
    DOWN_PAYMENT = "down_payment"
    INSTALLMENT = "installment"
    PREPAYMENT = "prepayment"
    REFUND = "refund"


class PaymentStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    CANCELED = "canceled"


class Failure(StrEnum):
    """How a failed charge is handled."""

    TRANSIENT = "transient"  # timeout, 5xx, processing_error: retried within the attempt
    SOFT = "soft"  # insufficient_funds: the collection is retried days later
    HARD = "hard"  # card_declined, expired_card: no retry until a new payment method


SOFT_DECLINES = frozenset({"insufficient_funds"})


def classify(result: ChargeResult) -> Failure | None:
    """None for a success. Unknown decline codes count as hard: never retry blindly."""
    if result.outcome is ChargeOutcome.SUCCEEDED:
        return None
    if result.outcome is ChargeOutcome.TRANSIENT:
        return Failure.TRANSIENT
    return Failure.SOFT if result.code in SOFT_DECLINES else Failure.HARD


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    outcome: str  # succeeded | declined | transient
    code: str | None
    gateway_reference: str | None


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    consumer_id: str
    plan_id: str | None
    checkout_id: str | None
    kind: PaymentKind
    amount: int
    currency: str
    status: PaymentStatus
    failure_code: str | None
    payment_method_id: str | None
    gateway_key: str
    gateway_token: str | None
    gateway_reference: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    """The final answer of the gateway for one payment, after in-attempt retries."""

    succeeded: bool
    failure: Failure | None
    code: str | None
    gateway_reference: str | None
    attempts: tuple[Attempt, ...]
