"""`GET /v1/me/notifications` (consumer) and `GET /v1/notifications` (operator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from bnpl.gateway import ConsumerP, OperatorP, runtime
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.notifications import service
from bnpl.notifications.repository import Notification

router = APIRouter(tags=["notifications"])


class NotificationOut(BaseModel):
    id: str
    channel: Literal["email", "sms", "push"]
    template: str
    subject: str
    status: Literal["queued", "sent", "failed"]
    error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id,
            channel=n.channel,
            template=n.template,
            subject=n.subject,
            status=n.status,
            error=n.error,
            created_at=n.created_at,
            sent_at=n.sent_at,
        )


async def _page(request: Request, consumer_id: str, page: PageParams) -> Page[NotificationOut]:
    async with runtime(request).db.connection() as conn:
        found = await service.list_notifications(
            conn, consumer_id, after=page.starting_after, limit=page.limit + 1
        )
    return make_page(found, page.limit, NotificationOut.of, lambda n: n.id)


@router.get("/v1/me/notifications", response_model=Page[NotificationOut])
async def my_notifications(
    request: Request, consumer: ConsumerP, page: Annotated[PageParams, Depends(page_params)]
) -> Page[NotificationOut]:
    """What the platform sent (or is sending) the consumer, oldest first."""
    return await _page(request, consumer.consumer_id, page)


@router.get("/v1/notifications", response_model=Page[NotificationOut])
async def consumer_notifications(
    request: Request,
    _: OperatorP,
    consumer_id: Annotated[str, Query(min_length=1, max_length=64)],
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[NotificationOut]:
    return await _page(request, consumer_id, page)
