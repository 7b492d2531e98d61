"""Operator endpoints: `GET /v1/ledger/balances`, `/v1/ledger/verify` and the journal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from prometheus_client import Counter

from bnpl.gateway.auth import OperatorP
from bnpl.gateway.context import runtime
from bnpl.kit.errors import not_found
from bnpl.kit.money import SUPPORTED_CURRENCIES
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.ledger import checks, service
from bnpl.ledger.schemas import BalanceList, BalanceOut, CheckOut, EntryOut, LineOut, VerifyOut

# Alerted on when a run fails (deploy/prometheus/alerts.yaml); run hourly by a CronJob.
VERIFICATIONS = Counter(
    "bnpl_ledger_verifications_total", "Runs of GET /v1/ledger/verify", ["outcome"]
)

router = APIRouter(tags=["ledger"])

Currency = Annotated[
    str | None, Query(pattern="^(" + "|".join(sorted(SUPPORTED_CURRENCIES)) + ")$")
]
Id = Annotated[str | None, Query(min_length=1, max_length=255)]


def _entry_out(entry: service.Entry) -> EntryOut:
    return EntryOut(
        id=entry.id,
        kind=entry.kind,
        reference_id=entry.reference_id,
        currency=entry.currency,
        amount=entry.amount,
        at=entry.at,
        consumer_id=entry.consumer_id,
        merchant_id=entry.merchant_id,
        created_at=entry.created_at,
        lines=[LineOut(account=x.account, side=x.side, amount=x.amount) for x in entry.lines],
    )


@router.get("/v1/ledger/balances", response_model=BalanceList)
async def list_balances(request: Request, _: OperatorP, currency: Currency = None) -> BalanceList:
    """Debits, credits and the balance (signed by the normal side) per account and currency."""
    async with runtime(request).db.connection() as conn:
        found = await service.balances(conn, currency)
    return BalanceList(
        data=[
            BalanceOut(
                account=b.account,
                currency=b.currency,
                debits=b.debits,
                credits=b.credits,
                balance=b.balance,
                normal_side=b.normal_side,
            )
            for b in found
        ]
    )


@router.get("/v1/ledger/verify", response_model=VerifyOut)
async def verify_ledger(request: Request, _: OperatorP) -> VerifyOut:
    """The ledger invariants: the built-in journal checks and those other contexts register."""
    result = await checks.verify(runtime(request).db)
    VERIFICATIONS.labels("ok" if result.ok else "failed").inc()
    return VerifyOut(
        ok=result.ok,
        checks=[CheckOut(name=c.name, ok=c.ok, detail=c.detail) for c in result.checks],
    )


@router.get("/v1/ledger/entries", response_model=Page[EntryOut])
async def list_entries(
    request: Request,
    _: OperatorP,
    page: Annotated[PageParams, Depends(page_params)],
    reference_id: Id = None,
    consumer_id: Id = None,
    merchant_id: Id = None,
    kind: Id = None,
) -> Page[EntryOut]:
    """Journal entries with their lines, oldest first."""
    async with runtime(request).db.connection() as conn:
        found = await service.entries(
            conn,
            reference_id=reference_id,
            consumer_id=consumer_id,
            merchant_id=merchant_id,
            kind=kind,
            after=page.starting_after,
            limit=page.limit + 1,
        )
    return make_page(found, page.limit, _entry_out, lambda e: e.id)


@router.get("/v1/ledger/entries/{entry_id}", response_model=EntryOut)
async def get_entry(request: Request, _: OperatorP, entry_id: str) -> EntryOut:
    async with runtime(request).db.connection() as conn:
        found = await service.entry(conn, entry_id)
    if found is None:
        raise not_found("ledger entry")
    return _entry_out(found)
