"""Operator endpoints: `GET /v1/audit` and `GET /v1/audit/verify`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from prometheus_client import Counter
from pydantic import BaseModel

from bnpl.audit.chain import seal_all, verify
from bnpl.gateway.auth import OperatorP
from bnpl.gateway.context import runtime
from bnpl.kit.pagination import Page, PageParams, make_page, page_params

# Alerted on when the chain is broken (deploy/prometheus/alerts.yaml); run hourly by a CronJob.
VERIFICATIONS = Counter(
    "bnpl_audit_verifications_total", "Runs of GET /v1/audit/verify", ["outcome"]
)

router = APIRouter(tags=["audit"])


class AuditRecord(BaseModel):
    id: str
    at: datetime
    actor: str
    action: str
    entity_id: str | None
    request_id: str | None
    data: dict[str, Any] | None
    chain_index: int | None
    hash: str | None


class VerifyResult(BaseModel):
    ok: bool
    records: int
    broken_at: dict[str, Any] | None = None


@router.get("/v1/audit", response_model=Page[AuditRecord])
async def list_audit_records(
    request: Request,
    _: OperatorP,
    page: Annotated[PageParams, Depends(page_params)],
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
) -> Page[AuditRecord]:
    db = runtime(request).db
    await seal_all(db, wait=True)
    after = 0
    if page.starting_after:
        after = (
            await db.fetchval("SELECT seq FROM audit.records WHERE id = $1", page.starting_after)
            or 0
        )
    rows = await db.fetch(
        """
        SELECT seq, id, at, actor, action, entity_id, request_id, data, chain_index, hash
        FROM audit.records
        WHERE seq > $1 AND ($2::text IS NULL OR entity_id = $2)
          AND ($3::text IS NULL OR actor = $3)
        ORDER BY seq LIMIT $4
        """,
        after,
        entity_id,
        actor,
        page.limit + 1,
    )
    return make_page(
        rows,
        page.limit,
        lambda r: AuditRecord(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            entity_id=r["entity_id"],
            request_id=r["request_id"],
            data=r["data"],
            chain_index=r["chain_index"],
            hash=bytes(r["hash"]).hex() if r["hash"] is not None else None,
        ),
        lambda r: r["id"],
    )


@router.get("/v1/audit/verify", response_model=VerifyResult, response_model_exclude_none=True)
async def verify_audit_chain(request: Request, _: OperatorP) -> VerifyResult:
    result = await verify(runtime(request).db)
    VERIFICATIONS.labels("ok" if result.ok else "broken").inc()
    return VerifyResult(ok=result.ok, records=result.records, broken_at=result.broken_at)
