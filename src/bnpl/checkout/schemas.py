"""Checkout requests and responses (API.md, "Checkouts")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from bnpl.checkout.domain import Checkout, PlanOption
from bnpl.kit.money import MAX_AMOUNT, SUPPORTED_CURRENCIES
from bnpl.kit.wire import Integer

Amount = Annotated[Integer, Field(gt=0, le=MAX_AMOUNT)]


class PlanName(StrEnum):
    PAY_IN_4 = "pay_in_4"
    MONTHLY_6 = "monthly_6"
    MONTHLY_12 = "monthly_12"


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    sku: str | None = Field(default=None, max_length=128)
    quantity: Annotated[Integer, Field(ge=1, le=100_000)]
    unit_price: Annotated[Integer, Field(ge=0, le=MAX_AMOUNT)]


class CheckoutCreate(BaseModel):
    amount: Amount
    # Documented as the supported codes; another is answered 422 `unsupported_currency`.
    currency: str = Field(
        min_length=3,
        max_length=3,
        json_schema_extra={"enum": list(sorted(SUPPORTED_CURRENCIES))},
    )
    merchant_reference: str | None = Field(default=None, max_length=255)
    items: list[Item] | None = Field(default=None, max_length=500)
    consumer_email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    success_url: str | None = Field(default=None, max_length=2048)
    cancel_url: str | None = Field(default=None, max_length=2048)


class ConfirmRequest(BaseModel):
    plan: PlanName
    payment_method_id: str = Field(min_length=1, max_length=64)


class CaptureRequest(BaseModel):
    amount: Amount | None = None


class RefundRequest(BaseModel):
    amount: Amount
    reason: str | None = Field(default=None, max_length=255)


class PlanOptionOut(BaseModel):
    plan: str
    installment_amount: int
    installments: int
    apr_bps: int

    @classmethod
    def of(cls, o: PlanOption) -> PlanOptionOut:
        return cls(
            plan=o.plan,
            installment_amount=o.installment_amount,
            installments=o.installments,
            apr_bps=o.apr_bps,
        )


class DecisionOut(BaseModel):
    id: str
    outcome: str
    reasons: list[str]


class CheckoutOut(BaseModel):
    id: str
    status: str
    amount: int
    currency: str
    merchant_id: str
    merchant_reference: str | None
    consumer_id: str | None
    items: list[dict[str, Any]] | None
    consumer_email: str | None
    success_url: str | None
    cancel_url: str | None
    expires_at: datetime
    available_plans: list[PlanOptionOut]
    plan: str | None
    plan_id: str | None
    decision: DecisionOut | None
    authorized_at: datetime | None
    authorization_expires_at: datetime | None
    captured_amount: int | None
    refunded_amount: int
    # The platform's hosted checkout page for this checkout (API.md, "Checkouts").
    redirect_url: str | None = None
    created_at: datetime

    @classmethod
    def of(
        cls, c: Checkout, options: list[PlanOption], redirect_url: str | None = None
    ) -> CheckoutOut:
        decision = None
        if c.decision_id and c.decision_outcome and c.status.public != "open":
            decision = DecisionOut(
                id=c.decision_id, outcome=c.decision_outcome, reasons=c.decline_reasons or []
            )
        return cls(
            id=c.id,
            status=c.status.public,
            amount=c.amount,
            currency=c.currency,
            merchant_id=c.merchant_id,
            merchant_reference=c.merchant_reference,
            consumer_id=c.consumer_id,
            items=c.items,
            consumer_email=c.consumer_email,
            success_url=c.success_url,
            cancel_url=c.cancel_url,
            expires_at=c.expires_at,
            available_plans=[PlanOptionOut.of(o) for o in options],
            plan=c.plan_kind,
            plan_id=c.plan_id,
            decision=decision,
            authorized_at=c.authorized_at,
            authorization_expires_at=c.authorization_expires_at,
            captured_amount=c.captured_amount,
            refunded_amount=c.refunded_amount,
            redirect_url=redirect_url,
            created_at=c.created_at,
        )


class RefundOut(BaseModel):
    id: str
    checkout_id: str
    amount: int
    currency: str
    reason: str | None
    applied_to_plan: int
    refunded_to_consumer: int
    created_at: datetime
