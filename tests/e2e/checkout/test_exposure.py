"""The credit limit under concurrency (DOMAIN.md rule 6): N simultaneous confirms of one
consumer never push the outstanding principal over the limit."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.checkout.helpers import Buyer, Flow
from tests.support import MerchantHandle

LIMIT = 50_000
N = 12


async def confirm_all(
    flow: Flow, shop: MerchantHandle, amount: int, plan: str
) -> tuple[Buyer, list[dict[str, Any]]]:
    buyer = await flow.buyer(credit_limit=LIMIT)
    checkouts = [await flow.create(shop, amount) for _ in range(N)]
    answers = await asyncio.gather(
        *(flow.confirm_response(buyer, c["id"], plan) for c in checkouts)
    )
    for r in answers:
        assert r.status_code == 200, r.text
    return buyer, [r.json() for r in answers]


async def test_parallel_monthly_confirms_stay_within_the_limit(
    flow: Flow, shop: MerchantHandle
) -> None:
    amount = 12_000
    buyer, bodies = await confirm_all(flow, shop, amount, "monthly_6")
    approved = [b for b in bodies if b["status"] == "authorized"]
    declined = [b for b in bodies if b["status"] == "declined"]
    assert len(approved) + len(declined) == N
    # Without a down payment nothing is released: exactly floor(L / amount) fit.
    assert len(approved) == LIMIT // amount == 4
    assert sum(b["amount"] for b in approved) <= LIMIT
    for b in declined:
        assert b["decision"]["reasons"] == ["insufficient_credit_limit"]
    me = await flow.me(buyer)
    assert me["available_credit"] == LIMIT - len(approved) * amount
    assert len({b["plan_id"] for b in approved}) == len(approved)


async def test_parallel_pay_in_4_confirms_stay_within_the_limit(
    flow: Flow, shop: MerchantHandle
) -> None:
    amount = 15_000  # installment 1 (3,750) is paid at once and no longer counts
    buyer, bodies = await confirm_all(flow, shop, amount, "pay_in_4")
    approved = [b for b in bodies if b["status"] == "authorized"]
    declined = [b for b in bodies if b["status"] == "declined"]
    assert len(approved) + len(declined) == N
    for b in declined:
        assert b["decision"]["reasons"] == ["insufficient_credit_limit"]
    # At most 3 fit if every decision came before any down payment was paid, 4 if each
    # came after the previous one's (11,250 each still owed).
    assert 3 <= len(approved) <= 4
    unpaid = 0
    for b in approved:
        plan = await flow.plan(b["plan_id"])
        unpaid += sum(
            i["principal"] - i["amount_paid"]
            for i in plan["installments"]
            if i["status"] == "scheduled"
        )
    assert unpaid == len(approved) * (amount - amount // 4) <= LIMIT
    me = await flow.me(buyer)
    assert me["available_credit"] == LIMIT - unpaid
    # Every approval saw an exposure that left room for it.
    rows = await flow.api.rt.db.fetch(
        "SELECT features FROM credit.decisions WHERE consumer_id = $1 AND outcome = 'approved'",
        buyer.id,
    )
    assert len(rows) == len(approved)
    for row in rows:
        assert row["features"]["outstanding_balance"] + amount <= LIMIT
