"""The operator endpoints: `GET /v1/ledger/balances`, `/v1/ledger/verify`, `/v1/ledger/entries`."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from bnpl import ledger
from bnpl.ledger import Account as A
from tests.integration.ledger.conftest import (
    CONSUMER_TOKEN,
    CURRENCY,
    MERCHANT_TOKEN,
    TEST_KIND,
    Scratch,
)
from tests.support import Api, assert_problem, bearer

ENDPOINTS = [
    "/v1/ledger/balances",
    "/v1/ledger/verify",
    "/v1/ledger/entries",
    "/v1/ledger/entries/jrn_00000000000000000000000000",
]


def by_account(body: dict[str, object], currency: str = CURRENCY) -> dict[str, dict[str, int]]:
    rows = body["data"]
    assert isinstance(rows, list)
    return {r["account"]: r for r in rows if r["currency"] == currency}


async def test_balances_over_http(api: Api, scratch: Scratch) -> None:
    r = await api.client.get("/v1/ledger/balances", headers=api.operator)
    assert r.status_code == 200, r.text
    before = by_account(r.json())

    await scratch.post(ledger.authorization(40_000))
    await scratch.post(ledger.consumer_payment(principal=10_000))
    await scratch.post(ledger.capture(captured=40_000, fee=1_626))

    r = await api.client.get("/v1/ledger/balances", headers=api.operator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data"}
    for row in body["data"]:
        assert {"account", "currency", "debits", "credits", "balance"} <= set(row)
        side = A(row["account"]).normal_side
        signed = row["debits"] - row["credits"]
        assert row["balance"] == (signed if side is ledger.Side.DEBIT else -signed)
        assert row["normal_side"] == side.value
    after = by_account(body)

    def moved(account: A) -> tuple[int, int, int]:
        a = after[account.value]
        b = before.get(account.value, {"debits": 0, "credits": 0, "balance": 0})
        return (
            a["debits"] - b["debits"],
            a["credits"] - b["credits"],
            a["balance"] - b["balance"],
        )

    assert moved(A.CONSUMER_RECEIVABLE) == (40_000, 10_000, 30_000)  # debit-normal
    assert moved(A.GATEWAY_CLEARING) == (10_000, 0, 10_000)
    assert moved(A.MERCHANT_AUTHORIZED) == (40_000, 40_000, 0)
    assert moved(A.MERCHANT_PAYABLE) == (1_626, 40_000, 38_374)  # credit-normal
    assert moved(A.FEE_REVENUE) == (0, 1_626, 1_626)

    r = await api.client.get(f"/v1/ledger/balances?currency={CURRENCY}", headers=api.operator)
    assert r.status_code == 200
    assert {row["currency"] for row in r.json()["data"]} == {CURRENCY}
    # In the chart's order.
    order = [a.value for a in A]
    accounts = [row["account"] for row in r.json()["data"]]
    assert accounts == sorted(accounts, key=order.index)


async def test_bad_currency_filter_is_a_problem(api: Api) -> None:
    r = await api.client.get("/v1/ledger/balances?currency=usd", headers=api.operator)
    assert_problem(r, 422, "validation_error")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_without_credentials_401(api: Api, path: str) -> None:
    assert_problem(await api.client.get(path), 401, "unauthenticated")
    assert_problem(await api.client.get(path, headers=bearer("nope")), 401, "unauthenticated")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.usefixtures("principal_tokens")
async def test_merchants_and_consumers_are_forbidden(api: Api, path: str) -> None:
    assert_problem(await api.client.get(path, headers=bearer(MERCHANT_TOKEN)), 403, "forbidden")
    assert_problem(await api.client.get(path, headers=bearer(CONSUMER_TOKEN)), 403, "forbidden")


async def test_entries_over_http(api: Api, scratch: Scratch) -> None:
    reference = f"chk_ledgertest{secrets.token_hex(6)}"
    first = await scratch.post(
        ledger.authorization(40_000), reference_id=reference, consumer_id="cus_ledgertest9"
    )
    second = await scratch.post(
        ledger.release_authorization(applied_to_plan=30_000, refunded_to_consumer=10_000),
        reference_id=reference,
    )
    third = await scratch.post(ledger.late_fee(700), reference_id=reference)

    r = await api.client.get(
        f"/v1/ledger/entries?reference_id={reference}&limit=2", headers=api.operator
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert [e["id"] for e in page["data"]] == [first, second]
    assert page["has_more"] is True and page["next_cursor"] == second
    assert page["data"][1]["lines"] == [
        {"account": "merchant_authorized", "side": "debit", "amount": 40_000},
        {"account": "consumer_receivable", "side": "credit", "amount": 30_000},
        {"account": "gateway_clearing", "side": "credit", "amount": 10_000},
    ]
    assert page["data"][0]["consumer_id"] == "cus_ledgertest9"
    r = await api.client.get(
        f"/v1/ledger/entries?reference_id={reference}&starting_after={second}",
        headers=api.operator,
    )
    assert [e["id"] for e in r.json()["data"]] == [third]
    assert r.json()["has_more"] is False

    r = await api.client.get(f"/v1/ledger/entries/{third}", headers=api.operator)
    assert r.status_code == 200
    assert r.json()["amount"] == 700 and r.json()["kind"] == f"{TEST_KIND}.entry"
    r = await api.client.get("/v1/ledger/entries/jrn_nope", headers=api.operator)
    assert_problem(r, 404, "not_found")


async def test_verify_is_ok_with_the_built_in_checks(api: Api, scratch: Scratch) -> None:
    await scratch.post(ledger.authorization(12_345))
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    assert r.status_code == 200, r.text
    body = r.json()
    names = [c["name"] for c in body["checks"]]
    for name in (
        "ledger.entries_balanced",
        "ledger.trial_balance_zero",
        "ledger.amounts_positive",
        "ledger.accounts_in_chart",
        "ledger.balances_match_journal",
    ):
        assert name in names
    for check in body["checks"]:
        assert set(check) == {"name", "ok", "detail"}
        if check["name"].startswith("ledger."):
            assert check["ok"] is True, check
    assert body["ok"] is all(c["ok"] for c in body["checks"])


@pytest.mark.usefixtures("no_extra_checks")
async def test_a_registered_failing_check_fails_verify(api: Api) -> None:
    async def receivable_matches_nothing(conn: asyncpg.Connection) -> ledger.CheckResult:
        balance = await ledger.account_balance(conn, A.CONSUMER_RECEIVABLE, CURRENCY)
        return ledger.CheckResult(False, f"consumer_receivable {balance} != open plans -1")

    name = "ledger_test.always_fails"
    with ledger.registered_check(name, receivable_matches_nothing):
        assert name in ledger.registered_checks()
        r = await api.client.get("/v1/ledger/verify", headers=api.operator)
        body = r.json()
        assert body["ok"] is False
        [check] = [c for c in body["checks"] if c["name"] == name]
        assert check["ok"] is False and "!= open plans -1" in check["detail"]
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    assert name not in [c["name"] for c in r.json()["checks"]]


@pytest.mark.usefixtures("no_extra_checks")
async def test_a_check_that_raises_is_reported_and_the_others_still_run(api: Api) -> None:
    async def broken(conn: asyncpg.Connection) -> ledger.CheckResult:
        await conn.fetchval("SELECT * FROM ledger.no_such_table")
        raise AssertionError("unreachable")

    async def passing(conn: asyncpg.Connection) -> ledger.CheckResult:
        balance = await ledger.account_balance(conn, A.FEE_REVENUE, CURRENCY)
        return ledger.CheckResult(balance >= 0, f"fee revenue {balance}")

    with (
        ledger.registered_check("ledger_test.a_broken", broken),
        ledger.registered_check("ledger_test.b_passing", passing),
    ):
        r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert r.json()["ok"] is False
    assert checks["ledger_test.a_broken"]["ok"] is False
    assert "failed to run" in checks["ledger_test.a_broken"]["detail"]
    assert checks["ledger_test.b_passing"]["ok"] is True
    assert all(c["ok"] for n, c in checks.items() if n.startswith("ledger."))


def test_register_check_refuses_built_in_names_and_bad_names() -> None:
    async def check(conn: asyncpg.Connection) -> ledger.CheckResult:
        return ledger.CheckResult(True)

    with pytest.raises(ValueError):
        ledger.register_check("ledger.trial_balance_zero", check)
    with pytest.raises(ValueError):
        ledger.register_check("", check)
    ledger.unregister_check("ledger_test.never_registered")  # no error
