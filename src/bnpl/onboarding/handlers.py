"""The events onboarding consumes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import asyncpg

from bnpl.messaging import Event, Handler
from bnpl.onboarding import events, service
from bnpl.onboarding.domain import Application, MalformedApplication

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

VERIFY_BUSINESS = "onboarding.verify_business"


def verify_business(rt: Runtime) -> Handler:
    """`merchant.applied` -> verify the business with the KYB provider."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        try:
            application = Application.from_event(event.data)
        except MalformedApplication:
            # Retrying cannot fix the payload: record it and move on.
            log.exception("unusable merchant application", extra={"event_id": event.event_id})
            return
        await service.verify_business(conn, rt.providers.kyb, application, at=rt.clock.now())

    return handle


def subscribe(rt: Runtime) -> None:
    rt.bus.subscribe(VERIFY_BUSINESS, [events.MERCHANT_APPLIED], verify_business(rt))
