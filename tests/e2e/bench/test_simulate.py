"""`bnpl simulate`: a few days of traffic on the sandbox clock against a platform it starts
itself (a fresh database on the test server, `bnpl sandbox` and `bnpl up` as child processes)
add up, and every check holds; against a platform whose audit chain was tampered with
(`--url`), the audit check fails and the exit code says so. Bad arguments are refused before
anything starts. The plan rules it checks are exercised on hand-made plans too."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx

from bnpl.bench.platform import Server, started_platform
from bnpl.bench.simulate_checks import Expected, add_months, plan_problems

ADMIN_TOKEN = "simulate-test-admin-token"
CHECKS = {
    "ledger",
    "audit chain",
    "plan invariants",
    "settlements",
    "events",
    "gateway charges",
    "requests",
}


def _env(postgres_server: str) -> dict[str, str]:
    env = {**os.environ, "BNPL_BENCH_DATABASE_URL": postgres_server}
    env["BNPL_ADMIN_TOKEN"] = ADMIN_TOKEN
    env.pop("BNPL_DATABASE_URL", None)
    return env


def _simulate(
    postgres_server: str, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bnpl.cli", "simulate", *args],
        env=_env(postgres_server),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-2000:]  # the JSON alone on stdout; the report: stderr
    out: dict[str, Any] = json.loads(lines[0])
    return out


def test_a_few_days_add_up_and_every_check_holds(postgres_server: str) -> None:
    done = _simulate(
        postgres_server,
        *("--days", "3", "--purchases-per-day", "4", "--merchants", "3", "--consumers", "40"),
        *("--seed", "7", "--json"),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = _result(done)
    assert out["ok"] is True and out["days_simulated"] == 3
    assert {c["name"] for c in out["checks"]} == CHECKS
    assert all(c["ok"] for c in out["checks"]), out["checks"]
    assert out["seeding"]["consumers"] == 40 == sum(out["seeding"]["personas"].values())
    assert out["seeding"]["merchants"] == 3 and out["target"]["started_here"] is True

    days, totals = out["per_day"], out["totals"]
    assert [d["day"] for d in days] == [1, 2, 3]
    first = date.fromisoformat(out["first_date"])
    assert [d["date"] for d in days] == [(first + timedelta(n)).isoformat() for n in range(3)]
    assert out["last_date"] == (first + timedelta(3)).isoformat()
    for name in ("purchases", "purchase_amount", "declined", "collected", "refunds", "late_fees"):
        assert sum(d[name] for d in days) == totals[name], name
    assert 0 < totals["purchases"] <= 12
    for d in days:  # each of the day's purchases captured, declined, voided or left open
        assert d["purchases"] + d["declined"] + d["voided"] + d["uncaptured"] == 4, d
    # Every checkout captured is on a plan the plan check read, and settled by the end.
    statuses = out["seen"]["plans_by_status"]
    assert sum(statuses.values()) >= totals["purchases"]
    assert totals["settlements"] >= 1

    assert "result: all 7 checks passed" in done.stderr
    assert "day date" in done.stderr and "settlements paid" in done.stderr  # the day table


def test_bad_arguments_are_refused_before_anything_starts(postgres_server: str) -> None:
    for args, option in (
        (("--days", "0"), "--days"),
        (("--purchases-per-day", "ten"), "--purchases-per-day"),
        (("--url", "http://10.1.2.3:8000"), "--url"),
    ):
        done = _simulate(postgres_server, *args, timeout=60)
        assert done.returncode == 2, (args, done.stderr[-2000:])
        assert option in done.stderr, (args, done.stderr[-2000:])
        assert not done.stdout.strip()


async def _sealed_clock_record(url: str, database_url: str) -> str:
    """One audit record (a clock move by the operator), once the sealer has chained it."""
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post(
            "/v1/sandbox/clock",
            json={"advance": "PT0S"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert r.status_code == 200, r.text
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(200):
            record = await conn.fetchval(
                "SELECT id FROM audit.records WHERE action = 'sandbox.clock_advanced' "
                "AND chain_index IS NOT NULL"
            )
            if record is not None:
                return str(record)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("the audit record was never sealed")


async def test_a_tampered_audit_chain_fails_the_run(postgres_server: str) -> None:
    server = Server(postgres_server, "the test server", None)
    async with started_platform(server, ADMIN_TOKEN, None, print, name="simtest") as target:
        assert target.database_url is not None
        record = await _sealed_clock_record(target.url, target.database_url)
        # Someone with database rights edits a sealed record behind the append-only trigger.
        conn = await asyncpg.connect(target.database_url)
        try:
            await conn.execute("SET session_replication_role = replica")
            await conn.execute("UPDATE audit.records SET actor = 'system' WHERE id = $1", record)
        finally:
            await conn.close()

        done = await asyncio.to_thread(
            _simulate,
            postgres_server,
            *("--url", target.url, "--days", "1", "--purchases-per-day", "3"),
            *("--merchants", "2", "--consumers", "20", "--json"),
        )
    assert done.returncode == 1, done.stderr[-4000:]
    out = _result(done)
    assert out["ok"] is False and out["target"]["started_here"] is False
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["audit chain"]["ok"] is False, checks
    assert record in checks["audit chain"]["detail"]
    # Only the tampering is reported: the run itself kept every other rule.
    assert all(c["ok"] for name, c in checks.items() if name != "audit chain"), checks
    assert "FAIL  audit chain" in done.stderr and "1 of 7 checks FAILED" in done.stderr


# -- the plan rules, on hand-made plans --------------------------------------------------------


def _pay_in_4(principal: int, paid: int = 1) -> dict[str, Any]:
    quarter = principal // 4
    amounts = [principal - 3 * quarter, quarter, quarter, quarter]
    start = date(2026, 1, 31)
    installments = [
        {
            "seq": n + 1,
            "due_date": (start + timedelta(days=14 * n)).isoformat(),
            "principal": amount,
            "interest": 0,
            "fees": 0,
            "amount_due": amount,
            "amount_paid": amount if n < paid else 0,
            "status": "paid" if n < paid else "scheduled",
        }
        for n, amount in enumerate(amounts)
    ]
    return {
        "id": "pln_test",
        "status": "active",
        "plan": "pay_in_4",
        "principal": principal,
        "original_principal": principal,
        "apr_bps": 0,
        "outstanding_balance": sum(amounts[paid:]),
        "late_fees_total": 0,
        "installments": installments,
        "created_at": "2026-01-31T10:00:00Z",
    }


def test_the_plan_rules_catch_what_they_should() -> None:
    today = date(2026, 2, 2)
    expected = Expected(kind="pay_in_4", authorized=10_001, applied_to_plan=0)
    assert plan_problems(_pay_in_4(10_001), expected, today) == []

    broken = _pay_in_4(10_001)
    broken["installments"][3]["principal"] -= 1  # a cent lost
    broken["installments"][3]["amount_due"] -= 1
    found = plan_problems(broken, expected, today)
    assert any("sum to 10000" in p for p in found), found

    unpaid_late = _pay_in_4(10_001)  # installment 2 due Feb 14: late from Feb 24 on
    assert any("not late" in p for p in plan_problems(unpaid_late, expected, date(2026, 2, 25)))
    assert plan_problems(unpaid_late, expected, date(2026, 2, 24)) == []  # a day of slack

    out_of_order = _pay_in_4(10_001, paid=0)
    out_of_order["installments"][1].update(amount_paid=2_500, status="paid")
    out_of_order["outstanding_balance"] = 10_001 - 2_500
    found = plan_problems(out_of_order, expected, today)
    assert any("while installment 1 is unpaid" in p for p in found), found

    refunded = Expected(kind="pay_in_4", authorized=10_001, applied_to_plan=2_500)
    assert any(
        "expected 10001 - 2500" in p for p in plan_problems(_pay_in_4(10_001), refunded, today)
    )

    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 31), 2) == date(2026, 3, 31)
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)
