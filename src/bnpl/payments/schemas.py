"""Payment responses (API.md, "Payments")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from bnpl.payments.domain import Payment


class AttemptOut(BaseModel):
    at: datetime
    outcome: str
    code: str | None
    gateway_reference: str | None


class PaymentOut(BaseModel):
    id: str
    plan_id: str | None
    kind: str
    amount: int
    currency: str
    status: str
    failure_code: str | None
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(
            id=p.id,
            plan_id=p.plan_id,
            kind=p.kind.value,
            amount=p.amount,
            currency=p.currency,
            status=p.status.value,
            failure_code=p.failure_code,
            attempts=[
                AttemptOut(
                    at=a.at, outcome=a.outcome, code=a.code, gateway_reference=a.gateway_reference
                )
                for a in p.attempts
            ],
            next_attempt_at=p.next_attempt_at,
            created_at=p.created_at,
        )
