"""The events merchants consumes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from bnpl.merchants import events, service
from bnpl.merchants.settlements import service as settlements
from bnpl.merchants.webhooks import service as webhooks
from bnpl.messaging import PUBLIC_TYPES, Event, Handler

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

APPLY_VERIFICATION = "merchants.apply_verification"
RECORD_SETTLEMENT_ITEMS = "merchants.record_settlement_items"
QUEUE_WEBHOOKS = "merchants.queue_webhooks"


def apply_verification(rt: Runtime) -> Handler:
    """`onboarding.business_verified` / `_rejected` -> the merchant is `active` / `rejected`."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        await service.apply_verification(
            conn,
            str(event.data["merchant_id"]),
            verified=event.type == events.BUSINESS_VERIFIED,
            reason=event.data.get("reason"),
            reference=event.data.get("provider_reference"),
            at=rt.clock.now(),
        )

    return handle


def subscribe(rt: Runtime) -> None:
    rt.bus.subscribe(
        APPLY_VERIFICATION,
        [events.BUSINESS_VERIFIED, events.BUSINESS_REJECTED],
        apply_verification(rt),
        batch=True,
    )
    # Captures, their fees and refunds: what the daily settlement nets.
    rt.bus.subscribe(
        RECORD_SETTLEMENT_ITEMS,
        [settlements.CHECKOUT_CAPTURED, settlements.CHECKOUT_REFUNDED],
        settlements.record_items,
        batch=True,
    )
    # Every public event of a merchant, for its webhook endpoints.
    rt.bus.subscribe_batch(QUEUE_WEBHOOKS, PUBLIC_TYPES, webhooks.queue_handler(rt))
