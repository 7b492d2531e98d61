"""`GET /v1/webhook_failures` (operator): webhook sends that failed for good or are being
retried after a failed attempt, newest first, with the last answer (the operator dashboard's
failed-webhooks list). Merchants see their own attempts under their endpoints' deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from bnpl.gateway import OperatorP, runtime
from bnpl.kit.pagination import Page, PageParams, make_page, page_params

router = APIRouter(tags=["webhooks"])


class WebhookFailureOut(BaseModel):
    id: str
    endpoint_id: str
    merchant_id: str
    url: str
    event_id: str
    event_type: str
    attempts: int
    status: str  # failed (given up) | pending (retrying)
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


@router.get("/v1/webhook_failures", response_model=Page[WebhookFailureOut])
async def list_webhook_failures(
    request: Request, _: OperatorP, page: Annotated[PageParams, Depends(page_params)]
) -> Page[WebhookFailureOut]:
    cursor = page.starting_after or ""
    after = int(cursor) if cursor.isdigit() else None
    rows = await runtime(request).db.fetch(
        """
        SELECT j.id, j.endpoint_id, e.merchant_id, e.url, j.event_id, j.event_type, j.attempts,
               j.status, j.next_attempt_at, j.created_at, last.status_code, last.error
        FROM merchants.webhook_jobs j
        JOIN merchants.webhook_endpoints e ON e.id = j.endpoint_id
        LEFT JOIN LATERAL (
            SELECT d.status_code, d.error FROM merchants.webhook_deliveries d
            WHERE d.job_id = j.id ORDER BY d.attempt DESC LIMIT 1
        ) last ON true
        WHERE (j.status = 'failed' OR (j.status = 'pending' AND j.attempts > 0))
          AND ($1::bigint IS NULL OR j.id < $1)
        ORDER BY j.id DESC LIMIT $2
        """,
        after,
        page.limit + 1,
    )
    shaped = [
        WebhookFailureOut(
            id=str(r["id"]),
            endpoint_id=r["endpoint_id"],
            merchant_id=r["merchant_id"],
            url=r["url"],
            event_id=r["event_id"],
            event_type=r["event_type"],
            attempts=r["attempts"],
            status=r["status"],
            next_attempt_at=r["next_attempt_at"],
            last_status_code=r["status_code"],
            last_error=r["error"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
    return make_page(shaped, page.limit, lambda f: f, lambda f: f.id)
