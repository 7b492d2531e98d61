"""`GET /v1/reports/summary` (operator)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from bnpl import installments
from bnpl.gateway import OperatorP, follow_sandbox_clock, runtime
from bnpl.kit.errors import validation_error
from bnpl.kit.money import SUPPORTED_CURRENCIES
from bnpl.kit.wire import Timestamp
from bnpl.reporting.facts import flows

router = APIRouter(tags=["reports"])


class Summary(BaseModel):
    """Flows over [`from`, `to`): `checkouts` created, how many of them were ever
    `authorized` or `declined`, `approval_rate = authorized / (authorized + declined)` (0
    when neither), `gmv` captured, `refunded`, `late_fees` charged, and
    `collection_success_rate`, the share of plan charges answered that succeeded. The plan
    book as it stands now: `active_plans`, `delinquent_plans`, `outstanding_receivables`
    (unpaid principal, accrued unpaid interest and unpaid late fees of open plans). Money in
    minor units of `currency`."""

    currency: str
    merchant_id: str | None
    from_: AwareDatetime | None = Field(default=None, serialization_alias="from")
    to: AwareDatetime
    checkouts: int
    authorized: int
    declined: int
    approval_rate: float
    gmv: int
    refunded: int
    active_plans: int
    outstanding_receivables: int
    delinquent_plans: int
    late_fees: int
    collection_success_rate: float


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@router.get("/v1/reports/summary", response_model=Summary)
async def summary(
    request: Request,
    _: OperatorP,
    start: Annotated[Timestamp | None, Query(alias="from")] = None,
    to: Annotated[Timestamp | None, Query()] = None,
    merchant_id: Annotated[str | None, Query(max_length=64)] = None,
    currency: Annotated[str, Query(min_length=3, max_length=3)] = "USD",
) -> Summary:
    """The platform's (or one merchant's) figures; new events show within moments (the
    reporting consumer keeps up with the bus)."""
    if currency not in SUPPORTED_CURRENCIES:
        raise validation_error(f"unsupported currency {currency}", "currency")
    rt = runtime(request)
    if to is None:
        await follow_sandbox_clock(request)
    end = to or rt.clock.now()
    if start is not None and start > end:
        raise validation_error("`from` must not be after `to`", "from")
    async with rt.db.connection() as conn:
        period = await flows(conn, currency, start, end, merchant_id)
        book = await installments.portfolio(conn, currency, merchant_id)
    answered = period.collections_succeeded + period.collections_failed
    return Summary(
        currency=currency,
        merchant_id=merchant_id,
        from_=start,
        to=end,
        checkouts=period.checkouts,
        authorized=period.authorized,
        declined=period.declined,
        approval_rate=_rate(period.authorized, period.authorized + period.declined),
        gmv=period.gmv,
        refunded=period.refunded,
        active_plans=book.active_plans,
        outstanding_receivables=book.outstanding_receivables,
        delinquent_plans=book.delinquent_plans,
        late_fees=period.late_fees,
        collection_success_rate=_rate(period.collections_succeeded, answered),
    )
