"""Events the payments context consumes."""

from __future__ import annotations

import asyncpg

from bnpl.messaging import Event, Handler
from bnpl.payments.service import execute_refund
from bnpl.runtime import Runtime


def execute_refund_handler(rt: Runtime) -> Handler:
    """`payments.execute_refund`: pay a recorded refund back through the gateway."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        await execute_refund(conn, rt.providers.gateway, rt.clock, str(event.data["payment_id"]))

    return handle
