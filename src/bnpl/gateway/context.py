"""Per-request access to the runtime, and `command()`: the boundary of a state change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from fastapi import Request, Response
from pydantic import BaseModel

from bnpl import audit, messaging
from bnpl.gateway.idempotency import complete, current_claim
from bnpl.gateway.principals import Principal

if TYPE_CHECKING:
    from bnpl.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def request_id(request: Request) -> str | None:
    rid: str | None = getattr(request.state, "request_id", None)
    return rid


@dataclass
class Command:
    """One state-changing request: its transaction, principal, business time and request id."""

    conn: asyncpg.Connection
    rt: Runtime
    principal: Principal
    request_id: str | None
    at: datetime

    @property
    def actor(self) -> str:
        return self.principal.actor

    async def respond(
        self,
        status: int,
        body: BaseModel | None,
        *,
        action: str,
        entity_id: str | None,
        data: Mapping[str, Any] | None = None,
    ) -> Response:
        """Write the audit record and the idempotent answer in this transaction; answer."""
        await audit.record(
            self.conn,
            actor=self.actor,
            action=action,
            entity_id=entity_id,
            at=self.at,
            request_id=self.request_id,
            data=data,
        )
        payload = body.model_dump_json().encode() if body is not None else b""
        claim = current_claim.get()
        if claim is not None:
            await complete(self.conn, claim, status, payload)
        if status == 204:
            return Response(status_code=204)
        return Response(payload, status_code=status, media_type="application/json")


async def follow_sandbox_clock(request: Request) -> None:
    """Before reading business time outside a `command`: in the sandbox, another API process
    may have just moved the clock (and answered the client), so read it now. Production has
    no movable clock: nothing to do."""
    rt = runtime(request)
    if rt.settings.sandbox:
        async with rt.db.connection() as conn:
            await rt.clock.refresh(conn)


@asynccontextmanager
async def command(request: Request) -> AsyncIterator[Command]:
    """Open the transaction of one state-changing request; it commits when the block exits."""
    rt = runtime(request)
    claim = current_claim.get()
    try:
        async with rt.db.transaction() as conn:
            if rt.settings.sandbox:
                # Another process may have just moved the sandbox clock (its answer reached
                # the client already): read it in this request's transaction, not up to a
                # second later. Production has no movable clock and skips the read.
                await rt.clock.refresh(conn)
            async with messaging.outbox_at_end(conn):  # the request's events: one statement
                yield Command(
                    conn, rt, request.state.principal, request_id(request), rt.clock.now()
                )
    except BaseException:
        # The answer `respond` stored rolled back with the change: the gateway must not
        # take the key for completed (it would stay locked), but store or release it.
        if claim is not None:
            claim.completed = False
        raise
    rt.bus.wake()
