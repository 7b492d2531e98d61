"""Random sequences of payments, refunds and cancellations, persisted through the facade,
keep the plan's invariants, checked on what the database holds after every step."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnpl import installments
from bnpl.installments import PlanClosed, PlanKind, RefundExceedsPlan
from bnpl.runtime import Runtime
from tests.integration.installments.helpers import AT, new_plan, stored_installments, stored_plan

operations = st.lists(
    st.one_of(
        st.tuples(st.just("installment"), st.integers(1, 30_000)),
        st.tuples(st.just("prepayment"), st.integers(1, 60_000)),
        st.tuples(st.just("refund"), st.integers(1, 40_000)),
        st.tuples(st.just("cancel"), st.just(0)),
    ),
    max_size=8,
)


async def _check(rt: Runtime, plan_id: str, model: dict[str, int]) -> dict[str, Any]:
    plan = await stored_plan(rt, plan_id)
    rows = await stored_installments(rt, plan_id)
    assert sum(r["principal"] for r in rows) == plan["principal"]
    if plan["status"] == "canceled":
        # A canceled plan keeps only what was paid on it (and is paid back).
        assert plan["principal"] == sum(r["principal_paid"] for r in rows)
    else:
        assert plan["principal"] == plan["original_principal"] - model["applied_to_plan"]
    assert plan["refunded_amount"] == model["refunded"] <= plan["original_principal"]
    for r in rows:
        for part in ("principal", "interest", "fees"):
            assert 0 <= r[f"{part}_paid"] <= r[part]
        if r["status"] in ("paid", "canceled"):
            assert r["principal_paid"] + r["interest_paid"] + r["fees_paid"] == (
                r["principal"] + r["interest"] + r["fees"]
            )
        assert (r["paid_at"] is not None) == (r["status"] == "paid")
    # Every minor unit the consumer paid is on some installment.
    assert sum(r["principal_paid"] for r in rows) == model["principal_paid"]
    assert sum(r["interest_paid"] + r["fees_paid"] for r in rows) == model["other_paid"]

    open_rows = [r for r in rows if r["status"] in ("scheduled", "late")]
    if plan["status"] in ("active", "delinquent"):
        assert open_rows
    elif plan["status"] != "charged_off":
        assert not open_rows
    if plan["status"] != "canceled":
        fully_refunded = plan["refunded_amount"] == plan["original_principal"]
        assert (plan["status"] == "refunded") == fully_refunded

    async with rt.db.connection() as conn:
        public = await installments.get_plan(conn, plan_id)
    assert public is not None
    assert public.principal == plan["principal"]
    assert public.outstanding_balance == sum(
        r["principal"]
        + r["interest"]
        + r["fees"]
        - r["principal_paid"]
        - r["interest_paid"]
        - r["fees_paid"]
        for r in open_rows
    )
    return plan


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(list(PlanKind)),
    principal=st.integers(5_000, 60_000),
    apr_bps=st.sampled_from([0, 1999, 3600]),
    ops=operations,
)
async def test_any_sequence_keeps_the_plan_consistent_in_the_database(
    rt: Runtime, kind: PlanKind, principal: int, apr_bps: int, ops: list[tuple[str, int]]
) -> None:
    plan = await new_plan(rt, kind=kind, principal=principal, apr_bps=apr_bps)
    model = {"applied_to_plan": 0, "refunded": 0, "principal_paid": 0, "other_paid": 0}
    await _check(rt, plan.id, model)
    for op, amount in ops:
        async with rt.db.transaction() as conn:
            if op == "cancel":
                with contextlib.suppress(PlanClosed):
                    await installments.cancel_plan(conn, plan.id, at=AT)
            elif op == "refund":
                try:
                    applied = await installments.apply_refund(conn, plan.id, amount, at=AT)
                except (RefundExceedsPlan, PlanClosed):
                    pass
                else:
                    assert applied.applied_to_plan + applied.refunded_to_consumer == amount
                    model["applied_to_plan"] += applied.applied_to_plan
                    model["refunded"] += amount
            else:
                paid = await installments.apply_payment(
                    conn,
                    plan.id,
                    amount,
                    at=AT,
                    kind="prepayment" if op == "prepayment" else "installment",
                )
                assert paid.applied + paid.unapplied == amount
                model["principal_paid"] += paid.principal
                model["other_paid"] += paid.interest + paid.fees
        await _check(rt, plan.id, model)
