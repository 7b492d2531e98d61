"""`GET /v1/dead_letters` (operator): the events a consumer gave up on after its retries, with
the last error, oldest first (the operator dashboard's dead-letter list).

Not named `dead_letters`: importing a submodule of that name would rebind the facade's
`messaging.dead_letters` function to the module."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from bnpl.gateway import OperatorP, runtime
from bnpl.kit.pagination import Page, PageParams, make_page, page_params

router = APIRouter(tags=["events"])


class DeadLetterOut(BaseModel):
    consumer: str
    event_id: str
    event_type: str | None
    aggregate_id: str | None
    error: str
    failed_at: datetime


@router.get("/v1/dead_letters", response_model=Page[DeadLetterOut])
async def list_dead_letters(
    request: Request,
    _: OperatorP,
    page: Annotated[PageParams, Depends(page_params)],
    consumer: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[DeadLetterOut]:
    """Dead-lettered events (consumer, event, error), by event id, of one `consumer` or all;
    `starting_after` is an event id. `POST /v1/dead_letters/{consumer}/{event_id}/replay`
    hands one to its consumer again."""
    rows = await runtime(request).db.fetch(
        """
        SELECT d.consumer, d.event_id, e.type, e.aggregate_id, d.error, d.failed_at
        FROM messaging.dead_letters d LEFT JOIN messaging.events e ON e.event_id = d.event_id
        WHERE ($1::text IS NULL OR d.event_id > $1) AND ($3::text IS NULL OR d.consumer = $3)
        ORDER BY d.event_id, d.consumer LIMIT $2
        """,
        page.starting_after,
        page.limit + 1,
        consumer,
    )
    shaped = [
        DeadLetterOut(
            consumer=r["consumer"],
            event_id=r["event_id"],
            event_type=r["type"],
            aggregate_id=r["aggregate_id"],
            error=r["error"],
            failed_at=r["failed_at"],
        )
        for r in rows
    ]
    return make_page(shaped, page.limit, lambda d: d, lambda d: d.event_id)
