"""Response models of the ledger endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bnpl.ledger.domain import Side


class BalanceOut(BaseModel):
    account: str
    currency: str
    debits: int = Field(description="Sum of debit lines, minor units.")
    credits: int = Field(description="Sum of credit lines, minor units.")
    balance: int = Field(
        description="Signed by the account's normal side: debits - credits for debit-normal "
        "accounts (assets, expenses, contra-revenue), credits - debits for credit-normal ones "
        "(liabilities, revenue). Positive is the account's natural balance."
    )
    normal_side: Side


class BalanceList(BaseModel):
    data: list[BalanceOut]


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str


class VerifyOut(BaseModel):
    ok: bool
    checks: list[CheckOut]


class LineOut(BaseModel):
    account: str
    side: Side
    amount: int


class EntryOut(BaseModel):
    id: str
    kind: str
    reference_id: str
    currency: str
    amount: int = Field(description="The entry's total: its debits, which equal its credits.")
    at: datetime
    consumer_id: str | None
    merchant_id: str | None
    created_at: datetime
    lines: list[LineOut]
