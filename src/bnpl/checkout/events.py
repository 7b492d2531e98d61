"""The events checkout emits (public types of API.md), with their payload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from bnpl.checkout.domain import Checkout
from bnpl.messaging import publish

CREATED = "checkout.created"
AUTHORIZED = "checkout.authorized"
DECLINED = "checkout.declined"
CAPTURED = "checkout.captured"
VOIDED = "checkout.voided"
EXPIRED = "checkout.expired"
REFUNDED = "checkout.refunded"


def payload(c: Checkout) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "checkout",
        "status": c.status.public,
        "amount": c.amount,
        "currency": c.currency,
        "merchant_id": c.merchant_id,
        "merchant_reference": c.merchant_reference,
        "consumer_id": c.consumer_id,
        "plan": c.plan_kind,
        "plan_id": c.plan_id,
        "decision_id": c.decision_id,
        "captured_amount": c.captured_amount,
        "refunded_amount": c.refunded_amount,
    }


async def emit(
    conn: asyncpg.Connection,
    type: str,
    c: Checkout,
    *,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Publish a checkout event in the caller's transaction (outbox)."""
    await publish(
        conn,
        type,
        c.id,
        {**payload(c), **(extra or {})},
        occurred_at=at,
        merchant_id=c.merchant_id,
        consumer_id=c.consumer_id,
    )
