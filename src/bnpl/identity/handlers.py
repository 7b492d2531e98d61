"""The events identity consumes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from bnpl.identity import events, service
from bnpl.messaging import Event, Handler

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

VERIFY_KYC = "identity.verify_kyc"


def verify_kyc(rt: Runtime) -> Handler:
    """`identity.verify_kyc`: on `consumer.registered`, run KYC with the ID-verification
    provider and record `verified` or `rejected` (emitting `consumer.kyc_*`)."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        await service.verify_kyc(conn, rt, event.consumer_id or event.aggregate_id)

    return handle


def subscribe(rt: Runtime) -> None:
    rt.bus.subscribe(VERIFY_KYC, [events.CONSUMER_REGISTERED], verify_kyc(rt))
