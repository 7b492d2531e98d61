"""Webhook endpoints and deliveries as API.md shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bnpl.merchants.webhooks.domain import MAX_URL
from bnpl.merchants.webhooks.repository import Delivery, Endpoint


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL, examples=["https://shop.example/hooks"])
    events: list[str] = Field(
        min_length=1, max_length=64, examples=[["checkout.captured", "settlement.paid"], ["*"]]
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime

    @classmethod
    def of(cls, e: Endpoint) -> EndpointOut:
        return cls(id=e.id, url=e.url, events=list(e.events), created_at=e.created_at)


class EndpointCreated(EndpointOut):
    secret: str  # shown in this answer only


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            attempt=d.attempt,
            status_code=d.status_code,
            error=d.error,
            created_at=d.created_at,
        )


class Redelivery(BaseModel):
    event_id: str
    endpoints: int  # how many endpoints the event was queued for again
