"""The credit decision's public JSON (API.md, "Credit decisions")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, Field


class DecisionOut(BaseModel):
    """A stored credit decision, approved or declined, with what it was decided from."""

    id: str
    consumer_id: str
    checkout_id: str
    outcome: Literal["approved", "declined"]
    reasons: list[str] = Field(description="Decline reason codes; empty when approved.")
    score: float | None = Field(
        description="The model's probability of default; every decision is scored, declined or not."
    )
    model_version: str | None
    features: dict[str, Any] = Field(description="The model's features as the decision saw them.")
    latency_ms: float = Field(description="Server-side time to decide, in milliseconds.")
    created_at: datetime
    bureau: str = Field(
        description="not_consulted | not_needed | cached | fetched | unavailable | circuit_open"
    )
    amount: int
    currency: str
    plan: str


def decision_out(row: asyncpg.Record) -> DecisionOut:
    return DecisionOut(
        id=row["id"],
        consumer_id=row["consumer_id"],
        checkout_id=row["checkout_id"],
        outcome=row["outcome"],
        reasons=list(row["reasons"]),
        score=row["score"],
        model_version=row["model_version"],
        features=row["features"],
        latency_ms=float(row["latency_ms"]),
        created_at=row["created_at"],
        bureau=row["bureau"],
        amount=row["amount"],
        currency=row["currency"],
        plan=row["plan"],
    )
