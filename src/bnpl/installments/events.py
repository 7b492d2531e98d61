"""The events the installments context emits.

Every event is keyed by the plan id (so one plan's events are delivered in order) and
carries the plan's `merchant_id` and `consumer_id` (so its merchant sees it); its data is
the plan's public JSON unless noted.

- `plan.created`: a checkout was authorized and financed.
- `installment.paid`: a payment settled an installment; data `plan_id`, `seq`,
  `due_date`, `amount_due`, `amount_paid`, `currency`, `paid_at`.
- `plan.refund_applied`: a refund or a partial capture's release was allocated; data
  the allocation (`amount`, `applied_to_plan`, `refunded_to_consumer`, waived amounts,
  `canceled_installments`) and the plan under `plan`.
- `plan.paid_off`: nothing is left to pay (by payments, or a refund of all that was
  unpaid).
- `plan.refunded`: the plan's whole amount was refunded.
- `plan.canceled`: void or authorization expiry; also `paid_by_consumer`.
- `plan.reactivated`: a delinquent plan has no late installment any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, Protocol

import asyncpg

from bnpl.installments.domain import PlanStatus
from bnpl.installments.models import Plan, PlanInstallment
from bnpl.installments.schemas import plan_json
from bnpl.messaging import NewEvent, publish_many

PLAN_CREATED: Final = "plan.created"
INSTALLMENT_PAID: Final = "installment.paid"
PLAN_REFUND_APPLIED: Final = "plan.refund_applied"
PLAN_PAID_OFF: Final = "plan.paid_off"
PLAN_REFUNDED: Final = "plan.refunded"
PLAN_CANCELED: Final = "plan.canceled"
PLAN_REACTIVATED: Final = "plan.reactivated"
PLAN_DELINQUENT: Final = "plan.delinquent"
PLAN_CHARGED_OFF: Final = "plan.charged_off"
INSTALLMENT_LATE: Final = "installment.late"

# The event a plan's move into a status emits.
STATUS_EVENTS: Final[Mapping[PlanStatus, str]] = {
    PlanStatus.PAID_OFF: PLAN_PAID_OFF,
    PlanStatus.REFUNDED: PLAN_REFUNDED,
    PlanStatus.CANCELED: PLAN_CANCELED,
    PlanStatus.ACTIVE: PLAN_REACTIVATED,
    PlanStatus.DELINQUENT: PLAN_DELINQUENT,
    PlanStatus.CHARGED_OFF: PLAN_CHARGED_OFF,
}


def rfc3339(at: datetime) -> str:
    """UTC, ``Z``-suffixed, as the plan JSON (pydantic) writes its timestamps."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class PlanKeys(Protocol):
    """What keys a plan's event: a `Plan`, or a stored `PlanRecord`."""

    @property
    def id(self) -> str: ...
    @property
    def merchant_id(self) -> str: ...
    @property
    def consumer_id(self) -> str: ...
    @property
    def currency(self) -> str: ...


class PaidInstallment(Protocol):
    """A `PlanInstallment`, or the domain's `Installment`."""

    @property
    def seq(self) -> int: ...
    @property
    def due_date(self) -> date: ...
    @property
    def amount_due(self) -> int: ...
    @property
    def amount_paid(self) -> int: ...


def event(type: str, plan: PlanKeys, data: Mapping[str, Any], at: datetime) -> NewEvent:
    """One of the plan's events, keyed by the plan, for `messaging.publish_many`."""
    return NewEvent(
        type, plan.id, data, at, merchant_id=plan.merchant_id, consumer_id=plan.consumer_id
    )


def plan_status_event(
    type: str, plan: Plan, at: datetime, extra: Mapping[str, Any] | None = None
) -> NewEvent:
    """An event whose data is the plan's public JSON (plus ``extra`` keys, if any)."""
    data = plan_json(plan)
    if extra:
        data.update(extra)
    return event(type, plan, data, at)


def installment_paid_event(plan: PlanKeys, installment: PaidInstallment, at: datetime) -> NewEvent:
    return event(
        INSTALLMENT_PAID,
        plan,
        {
            "plan_id": plan.id,
            "seq": installment.seq,
            "due_date": installment.due_date.isoformat(),
            "amount_due": installment.amount_due,
            "amount_paid": installment.amount_paid,
            "currency": plan.currency,
            "paid_at": rfc3339(at),
        },
        at,
    )


async def _publish(conn: asyncpg.Connection, new: NewEvent) -> str:
    [event_id] = await publish_many(conn, [new])
    return event_id


async def emit(
    conn: asyncpg.Connection, type: str, plan: Plan, data: Mapping[str, Any], at: datetime
) -> str:
    return await _publish(conn, event(type, plan, data, at))


async def plan_event(
    conn: asyncpg.Connection,
    type: str,
    plan: Plan,
    at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """An event whose data is the plan's public JSON (plus ``extra`` keys, if any)."""
    return await _publish(conn, plan_status_event(type, plan, at, extra))


async def installment_paid(
    conn: asyncpg.Connection, plan: Plan, installment: PlanInstallment, at: datetime
) -> str:
    return await _publish(conn, installment_paid_event(plan, installment, at))


async def installment_late(
    conn: asyncpg.Connection, plan: Plan, installment: PlanInstallment, fee: int, at: datetime
) -> str:
    return await emit(
        conn,
        INSTALLMENT_LATE,
        plan,
        {
            "plan_id": plan.id,
            "seq": installment.seq,
            "due_date": installment.due_date.isoformat(),
            "amount_due": installment.amount_due,
            "amount_paid": installment.amount_paid,
            "late_fee": fee,
            "currency": plan.currency,
        },
        at,
    )
