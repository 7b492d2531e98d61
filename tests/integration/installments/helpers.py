"""Helpers of the installments integration tests.

Plans are normally created by the checkout context inside its confirm transaction; here
the facade is called directly in a transaction of our own, for real merchants and
consumers made through the public API (so their credentials work over HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bnpl import installments
from bnpl.installments import Plan, PlanKind
from bnpl.kit.ids import new_id
from bnpl.runtime import Runtime
from tests.support import ConsumerHandle, MerchantHandle

AT = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


@dataclass
class Parties:
    merchant: MerchantHandle
    other_merchant: MerchantHandle
    consumer: ConsumerHandle
    other_consumer: ConsumerHandle


async def new_plan(
    rt: Runtime,
    parties: Parties | None = None,
    *,
    kind: PlanKind = PlanKind.PAY_IN_4,
    principal: int = 40_000,
    apr_bps: int = 0,
    authorization_date: date = AT.date(),
    currency: str = "USD",
    consumer_id: str | None = None,
    at: datetime = AT,
    **overrides: Any,
) -> Plan:
    """A plan created through the facade, committed."""
    if consumer_id is None:
        consumer_id = parties.consumer.id if parties else new_id("cus")
    async with rt.db.transaction() as conn:
        return await installments.create_plan(
            conn,
            checkout_id=overrides.pop("checkout_id", new_id("chk")),
            consumer_id=consumer_id,
            merchant_id=parties.merchant.id if parties else new_id("mer"),
            kind=kind,
            principal=principal,
            currency=currency,
            apr_bps=apr_bps,
            authorization_date=authorization_date,
            payment_method_id=overrides.pop("payment_method_id", new_id("pm")),
            at=at,
        )


async def stored_installments(rt: Runtime, plan_id: str) -> list[dict[str, Any]]:
    rows = await rt.db.fetch(
        "SELECT * FROM installments.installments WHERE plan_id = $1 ORDER BY seq", plan_id
    )
    return [dict(r) for r in rows]


async def stored_plan(rt: Runtime, plan_id: str) -> dict[str, Any]:
    row = await rt.db.fetchrow("SELECT * FROM installments.plans WHERE id = $1", plan_id)
    assert row is not None
    return dict(row)


async def events_of(rt: Runtime, plan_id: str) -> list[dict[str, Any]]:
    rows = await rt.db.fetch(
        "SELECT type, data, merchant_id, consumer_id, occurred_at FROM messaging.events "
        "WHERE aggregate_id = $1 ORDER BY id",
        plan_id,
    )
    return [dict(r) for r in rows]
