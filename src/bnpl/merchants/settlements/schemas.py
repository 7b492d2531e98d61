"""The settlement resource as API.md shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from bnpl.merchants.settlements.domain import Settlement

SettlementStatusName = Literal["pending", "paid", "carried_over"]


class SettlementOut(BaseModel):
    """`net = captured - refunded - fees + carried_over`; `carried_over` is the shortfall
    brought in from an earlier settlement (zero or negative), as on its report line."""

    id: str
    object: Literal["settlement"] = "settlement"
    merchant_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    captured: int
    refunded: int
    fees: int
    carried_over: int
    net: int
    status: SettlementStatusName
    payout_reference: str | None
    payout_failure: str | None
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, s: Settlement) -> SettlementOut:
        return cls(
            id=s.id,
            merchant_id=s.merchant_id,
            currency=s.currency,
            period_start=s.period_start,
            period_end=s.period_end,
            captured=s.totals.captured,
            refunded=s.totals.refunded,
            fees=s.totals.fees,
            carried_over=s.totals.carried_over,
            net=s.net,
            status=s.status.value,
            payout_reference=s.payout_reference,
            payout_failure=s.payout_failure,
            created_at=s.created_at,
            paid_at=s.paid_at,
        )
