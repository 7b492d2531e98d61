"""`GET /v1/events`: the public events, for merchants (their own) and operators (all).
`POST /v1/dead_letters/{consumer}/{event_id}/replay`: an event a consumer gave up on, handed to
it again, for operators, on either bus backend (the list is `dead_letter_api`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from bnpl.gateway import Merchant, OperatorOrMerchantP, OperatorP, runtime
from bnpl.kit.errors import not_found
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.messaging.bus import PostgresBus
from bnpl.messaging.dead_letter_api import router as dead_letters_router
from bnpl.messaging.events import PUBLIC_TYPES, Event, public_event
from bnpl.messaging.kafka import KafkaBus

router = APIRouter(tags=["events"])


class EventOut(BaseModel):
    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]


def _shape(row: Any) -> EventOut:
    return EventOut(
        id=row["event_id"], type=row["type"], created_at=row["occurred_at"], data=row["data"]
    )


@router.get("/v1/events", response_model=Page[EventOut])
async def list_events(
    request: Request,
    who: OperatorOrMerchantP,
    page: Annotated[PageParams, Depends(page_params)],
    type: Annotated[str | None, Query(max_length=100)] = None,
    aggregate_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[EventOut]:
    """Public events, oldest first: a merchant's own, or all for the operator; of one `type`
    and of one `aggregate_id` (a checkout, plan, consumer or merchant id) when given."""
    merchant_id = who.merchant_id if isinstance(who, Merchant) else None
    types = sorted(PUBLIC_TYPES if type is None else PUBLIC_TYPES & {type})
    db = runtime(request).db
    after = 0
    if page.starting_after:
        after = (
            await db.fetchval(
                "SELECT id FROM messaging.events WHERE event_id = $1", page.starting_after
            )
            or 0
        )
    rows = await db.fetch(
        """
        SELECT id, event_id, type, occurred_at, data FROM messaging.events
        WHERE id > $1 AND type = ANY($2::text[]) AND ($3::text IS NULL OR merchant_id = $3)
          AND ($5::text IS NULL OR aggregate_id = $5)
        ORDER BY id LIMIT $4
        """,
        after,
        types,
        merchant_id,
        page.limit + 1,
        aggregate_id,
    )
    return make_page(rows, page.limit, _shape, lambda r: r["event_id"])


@router.get("/v1/events/{event_id}", response_model=EventOut)
async def get_event(event_id: str, request: Request, who: OperatorOrMerchantP) -> EventOut:
    async with runtime(request).db.connection() as conn:
        event = await public_event(conn, event_id)
    if event is None or (isinstance(who, Merchant) and event.merchant_id != who.merchant_id):
        raise not_found("event")
    return EventOut(
        id=event.event_id, type=event.type, created_at=event.occurred_at, data=dict(event.data)
    )


@router.post("/v1/dead_letters/{consumer}/{event_id}/replay", status_code=202)
async def replay_dead_letter(
    consumer: str, event_id: str, request: Request, _: OperatorP
) -> dict[str, str]:
    """Hand a dead letter to its consumer again (once the cause is mended). On Kafka it goes
    back through the retry topic; on the PostgreSQL bus it is handled here and now. Failing
    again, it comes back to the dead letters."""
    bus: PostgresBus = runtime(request).bus
    if isinstance(bus, KafkaBus):
        if not await bus.replay(consumer, event_id):
            raise not_found("dead letter")
        return {"status": "replaying"}
    sub = bus.subscriptions.get(consumer)
    if sub is None:
        raise not_found("dead letter")
    async with bus.db.transaction() as conn:
        row = await conn.fetchrow(
            """
            DELETE FROM messaging.dead_letters d USING messaging.events e
            WHERE d.consumer = $1 AND d.event_id = $2 AND e.event_id = d.event_id
            RETURNING e.event_id, e.type, e.aggregate_id, e.data, e.occurred_at, e.merchant_id,
                      e.consumer_id, e.position
            """,
            consumer,
            event_id,
        )
    if row is None:
        raise not_found("dead letter")
    await bus._handle(sub, Event.from_row(row))
    return {"status": "replayed"}


router.include_router(dead_letters_router)
