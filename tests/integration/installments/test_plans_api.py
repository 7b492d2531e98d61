"""Plans created through the facade, read back over HTTP: exact schedules, owners only."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bnpl import installments
from bnpl.installments import PlanExists, PlanKind
from bnpl.kit.ids import new_id
from bnpl.runtime import Runtime
from tests.integration.installments.helpers import AT, Parties, events_of, new_plan
from tests.support import Api, assert_problem, bearer


async def _get(api: Api, plan_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await api.client.get(f"/v1/plans/{plan_id}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


def _rows(body: dict[str, Any]) -> list[tuple[int, str, int, int]]:
    return [(i["seq"], i["due_date"], i["principal"], i["interest"]) for i in body["installments"]]


async def test_pay_in_4_plan_answers_the_api_json_exactly(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    checkout_id = new_id("chk")
    pm = new_id("pm")
    plan = await new_plan(
        rt, parties, principal=40_003, apr_bps=1999, checkout_id=checkout_id, payment_method_id=pm
    )

    body = await _get(api, plan.id, parties.consumer.headers)

    def row(seq: int, due: str, amount: int) -> dict[str, Any]:
        return {
            "seq": seq,
            "due_date": due,
            "principal": amount,
            "interest": 0,
            "fees": 0,
            "amount_due": amount,
            "amount_paid": 0,
            "status": "scheduled",
        }

    assert body == {
        "id": plan.id,
        "status": "active",
        "plan": "pay_in_4",
        "checkout_id": checkout_id,
        "consumer_id": parties.consumer.id,
        "merchant_id": parties.merchant.id,
        "currency": "USD",
        "principal": 40_003,
        "original_principal": 40_003,
        "apr_bps": 0,  # pay_in_4 is interest-free whatever the merchant's APR
        "outstanding_balance": 40_003,
        "late_fees_total": 0,
        "payment_method_id": pm,
        "installments": [
            row(1, "2026-11-25", 10_003),  # the remainder cents go to the first
            row(2, "2026-12-09", 10_000),
            row(3, "2026-12-23", 10_000),
            row(4, "2027-01-06", 10_000),
        ],
        "created_at": "2026-11-25T15:30:00Z",
    }

    [created] = await events_of(rt, plan.id)
    assert created["type"] == "plan.created"
    assert created["merchant_id"] == parties.merchant.id
    assert created["consumer_id"] == parties.consumer.id
    assert created["data"] == body
    assert created["occurred_at"] == AT


async def test_monthly_12_at_1999_bps_from_january_31(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    plan = await new_plan(
        rt,
        parties,
        kind=PlanKind.MONTHLY_12,
        principal=123_457,
        apr_bps=1999,
        authorization_date=date(2026, 1, 31),
    )
    body = await _get(api, plan.id, parties.merchant.headers)
    # Checked against an independent Decimal amortization: payment 114.36 a month.
    assert _rows(body) == [
        (1, "2026-02-28", 9379, 2057),
        (2, "2026-03-31", 9536, 1900),
        (3, "2026-04-30", 9695, 1741),
        (4, "2026-05-31", 9856, 1580),
        (5, "2026-06-30", 10020, 1416),
        (6, "2026-07-31", 10187, 1249),
        (7, "2026-08-31", 10357, 1079),
        (8, "2026-09-30", 10529, 907),
        (9, "2026-10-31", 10705, 731),
        (10, "2026-11-30", 10883, 553),
        (11, "2026-12-31", 11064, 372),
        (12, "2027-01-31", 11246, 187),  # the last takes the remaining balance
    ]
    assert all(i["amount_due"] == 11_436 for i in body["installments"][:11])
    assert body["installments"][11]["amount_due"] == 11_433
    assert body["apr_bps"] == 1999
    assert body["principal"] == 123_457
    assert body["outstanding_balance"] == 11 * 11_436 + 11_433


async def test_monthly_6_schedules_with_and_without_interest(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    with_interest = await new_plan(
        rt,
        parties,
        kind=PlanKind.MONTHLY_6,
        principal=50_001,
        apr_bps=1999,
        authorization_date=date(2026, 1, 31),
    )
    assert _rows(await _get(api, with_interest.id, api.operator)) == [
        (1, "2026-02-28", 7993, 833),
        (2, "2026-03-31", 8126, 700),
        (3, "2026-04-30", 8262, 564),
        (4, "2026-05-31", 8399, 427),
        (5, "2026-06-30", 8539, 287),
        (6, "2026-07-31", 8682, 145),
    ]
    interest_free = await new_plan(
        rt,
        parties,
        kind=PlanKind.MONTHLY_6,
        principal=77_777,
        apr_bps=0,
        authorization_date=date(2028, 1, 31),  # a leap year: February 29
    )
    assert _rows(await _get(api, interest_free.id, api.operator)) == [
        (1, "2028-02-29", 12_967, 0),
        (2, "2028-03-31", 12_962, 0),
        (3, "2028-04-30", 12_962, 0),
        (4, "2028-05-31", 12_962, 0),
        (5, "2028-06-30", 12_962, 0),
        (6, "2028-07-31", 12_962, 0),
    ]


async def test_a_checkout_is_financed_once(rt: Runtime, parties: Parties) -> None:
    checkout_id = new_id("chk")
    first = await new_plan(rt, parties, checkout_id=checkout_id)
    async with rt.db.transaction() as conn:
        with pytest.raises(PlanExists):
            await installments.create_plan(
                conn,
                checkout_id=checkout_id,
                consumer_id=parties.consumer.id,
                merchant_id=parties.merchant.id,
                kind=PlanKind.PAY_IN_4,
                principal=10_000,
                currency="USD",
                apr_bps=0,
                authorization_date=AT.date(),
                payment_method_id=new_id("pm"),
                at=AT,
            )
        # The caller's transaction is still usable after the refusal.
        assert await conn.fetchval("SELECT 1") == 1
    count = await rt.db.fetchval(
        "SELECT count(*) FROM installments.plans WHERE checkout_id = $1", checkout_id
    )
    assert count == 1
    assert first.principal == 40_000


async def test_only_its_consumer_merchant_and_operators_see_a_plan(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    plan = await new_plan(rt, parties)
    for headers in (parties.consumer.headers, parties.merchant.headers, api.operator):
        assert (await _get(api, plan.id, headers))["id"] == plan.id
    for headers in (parties.other_consumer.headers, parties.other_merchant.headers):
        r = await api.client.get(f"/v1/plans/{plan.id}", headers=headers)
        assert_problem(r, 404, "not_found")
    r = await api.client.get(f"/v1/plans/{plan.id}")
    assert_problem(r, 401, "unauthenticated")
    r = await api.client.get(f"/v1/plans/{plan.id}", headers=bearer("not-a-token"))
    assert_problem(r, 401, "unauthenticated")


@pytest.mark.parametrize(
    "plan_id", ["nope", "pln_", new_id("pln"), new_id("chk"), "pln_" + "Z" * 300, "%20"]
)
async def test_unknown_and_malformed_plan_ids_are_404(api: Api, plan_id: str) -> None:
    r = await api.client.get(f"/v1/plans/{plan_id}", headers=api.operator)
    assert_problem(r, 404, "not_found")


async def test_consumers_list_their_own_plans_newest_first(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    consumer = await api.consumer()
    mine = [
        (await new_plan(rt, parties, consumer_id=consumer.id, principal=1_000 + k)).id
        for k in range(3)
    ]
    await new_plan(rt, parties)  # someone else's

    r = await api.client.get("/v1/me/plans?limit=2", headers=consumer.headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert [p["id"] for p in first["data"]] == [mine[2], mine[1]]
    assert first["has_more"] is True
    assert first["next_cursor"] == mine[1]
    assert [len(p["installments"]) for p in first["data"]] == [4, 4]
    assert first["data"][0] == await _get(api, mine[2], consumer.headers)

    r = await api.client.get(
        f"/v1/me/plans?limit=2&starting_after={first['next_cursor']}", headers=consumer.headers
    )
    second = r.json()
    assert [p["id"] for p in second["data"]] == [mine[0]]
    assert second["has_more"] is False
    assert second["next_cursor"] is None

    r = await api.client.get("/v1/me/plans", headers=consumer.headers)
    assert [p["id"] for p in r.json()["data"]] == mine[::-1]


async def test_plan_list_is_for_consumers_with_a_valid_limit(api: Api, parties: Parties) -> None:
    r = await api.client.get("/v1/me/plans", headers=parties.merchant.headers)
    assert_problem(r, 403, "forbidden")
    r = await api.client.get("/v1/me/plans?limit=0", headers=parties.consumer.headers)
    assert_problem(r, 422, "validation_error")
    r = await api.client.get("/v1/me/plans?limit=101", headers=parties.consumer.headers)
    assert_problem(r, 422, "validation_error")
