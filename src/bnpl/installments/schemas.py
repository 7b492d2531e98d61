"""The plan's public JSON (API.md, "Plans"): the HTTP answer and the data of plan events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from bnpl.installments.domain import InstallmentStatus, PlanKind, PlanStatus
from bnpl.installments.models import Plan


class InstallmentOut(BaseModel):
    seq: int
    due_date: date
    principal: int
    interest: int
    fees: int
    amount_due: int
    amount_paid: int
    status: InstallmentStatus


class PlanOut(BaseModel):
    id: str
    status: PlanStatus
    plan: PlanKind
    checkout_id: str
    consumer_id: str
    merchant_id: str
    currency: str
    principal: int
    original_principal: int
    apr_bps: int
    outstanding_balance: int
    late_fees_total: int
    payment_method_id: str
    installments: list[InstallmentOut]
    created_at: datetime


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        status=plan.status,
        plan=plan.plan,
        checkout_id=plan.checkout_id,
        consumer_id=plan.consumer_id,
        merchant_id=plan.merchant_id,
        currency=plan.currency,
        principal=plan.principal,
        original_principal=plan.original_principal,
        apr_bps=plan.apr_bps,
        outstanding_balance=plan.outstanding_balance,
        late_fees_total=plan.late_fees_total,
        payment_method_id=plan.payment_method_id,
        installments=[
            InstallmentOut(
                seq=i.seq,
                due_date=i.due_date,
                principal=i.principal,
                interest=i.interest,
                fees=i.fees,
                amount_due=i.amount_due,
                amount_paid=i.amount_paid,
                status=i.status,
            )
            for i in plan.installments
        ],
        created_at=plan.created_at,
    )


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan exactly as ``GET /v1/plans/{id}`` shows it, as JSON-ready data."""
    return plan_out(plan).model_dump(mode="json")
