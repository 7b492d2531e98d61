"""`POST /v1/sandbox/clock`: moves the platform clock forward (never back), runs what fell due
before it answers, and persists the new time for every process.

The shared app's clock is moved only by about an hour in total (tests of other contexts run
on the same database after these); larger jumps happen on a database of the test's own.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any

import httpx

from bnpl.config import Settings
from bnpl.kit.clock import Clock
from bnpl.runtime import Runtime
from tests.integration.foundation.conftest import Probe, Scratch, running_probe
from tests.integration.foundation.due import DDL, DueItems, add_item, runs
from tests.support import assert_problem, bearer

CLOSE = timedelta(seconds=5)


def answered_now(r: httpx.Response) -> datetime:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"now"}
    now = datetime.fromisoformat(body["now"])
    assert now.utcoffset() == timedelta(0)
    return now


async def fresh_clock(rt: Runtime) -> Clock:
    clock = Clock()
    async with rt.db.connection() as conn:
        await clock.refresh(conn)
    return clock


async def clock_records(client: httpx.AsyncClient, operator: dict[str, str]) -> list[Any]:
    """Every audit record of the platform clock, page by page."""
    records: list[Any] = []
    query = "/v1/audit?entity_id=platform.clock&limit=100"
    url = query
    while True:
        r = await client.get(url, headers=operator)
        assert r.status_code == 200, r.text
        page = r.json()
        records += page["data"]
        if not page["has_more"]:
            return records
        url = f"{query}&starting_after={page['next_cursor']}"


# --- the shared app: small moves only ------------------------------------------------------


async def test_shared_clock_moves_forward_and_persists(
    client: httpx.AsyncClient, rt: Runtime
) -> None:
    operator = bearer(rt.settings.admin_token)
    before = rt.clock.now()
    now = answered_now(
        await client.post("/v1/sandbox/clock", json={"advance": "PT1H"}, headers=operator)
    )
    assert before + timedelta(hours=1) <= now < before + timedelta(hours=1) + CLOSE
    assert now <= rt.clock.now() < now + CLOSE
    assert abs((await fresh_clock(rt)).now() - rt.clock.now()) < CLOSE  # persisted

    target = rt.clock.now() + timedelta(minutes=5)
    now = answered_now(
        await client.post("/v1/sandbox/clock", json={"to": target.isoformat()}, headers=operator)
    )
    assert target <= now < target + CLOSE

    r = await client.post(
        "/v1/sandbox/clock",
        json={"to": (now - timedelta(minutes=1)).isoformat()},
        headers=operator,
    )
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "to"
    assert rt.clock.now() >= now


async def test_a_clock_move_is_audited_with_its_request_id(
    client: httpx.AsyncClient, rt: Runtime
) -> None:
    operator = bearer(rt.settings.admin_token)
    request_id = f"rid-clock-{secrets.token_hex(4)}"
    before = rt.clock.now()
    r = await client.post(
        "/v1/sandbox/clock",
        json={"advance": "PT1S"},
        headers={**operator, "X-Request-Id": request_id},
    )
    now = answered_now(r)
    records = [a for a in await clock_records(client, operator) if a["request_id"] == request_id]
    assert len(records) == 1, records
    record = records[0]
    assert record["actor"] == "operator"
    assert record["action"] == "sandbox.clock_advanced"
    assert datetime.fromisoformat(record["data"]["to"]) == now
    assert before <= datetime.fromisoformat(record["data"]["from"]) < now

    # A refused move changes nothing and leaves no record.
    r = await client.post(
        "/v1/sandbox/clock",
        json={"advance": "-P1D"},
        headers={**operator, "X-Request-Id": request_id + "-refused"},
    )
    assert_problem(r, 422, "validation_error")
    records = await clock_records(client, operator)
    assert all(a["request_id"] != request_id + "-refused" for a in records)


async def test_shared_clock_needs_an_operator(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/sandbox/clock", json={"advance": "P1D"})
    assert_problem(r, 401, "unauthenticated")
    r = await client.post(
        "/v1/sandbox/clock", json={"advance": "P1D"}, headers=bearer("sk_test_nobody")
    )
    assert_problem(r, 401, "unauthenticated")


# --- an app on a database of the test's own ------------------------------------------------


async def test_advance_by_days_and_months(scratch_app: Probe) -> None:
    rt, client = scratch_app.rt, scratch_app.client
    start = rt.clock.now()
    now = answered_now(
        await client.post(
            "/v1/sandbox/clock", json={"advance": "P1D"}, headers=scratch_app.operator
        )
    )
    assert start + timedelta(days=1) <= now < start + timedelta(days=1) + CLOSE
    now = answered_now(
        await client.post(
            "/v1/sandbox/clock", json={"advance": "P1M"}, headers=scratch_app.operator
        )
    )
    assert start + timedelta(days=29) <= now < start + timedelta(days=33)
    assert abs((await fresh_clock(rt)).now() - now) < CLOSE


async def test_due_work_has_run_when_the_clock_answers(scratch_app: Probe) -> None:
    rt, client = scratch_app.rt, scratch_app.client
    await rt.db.execute(DDL)
    rt.scheduler.register(DueItems(rt.clock))
    start = rt.clock.now()
    await add_item(rt.db, "tomorrow", start + timedelta(hours=20))
    await add_item(rt.db, "soon", start + timedelta(hours=2), follow_up=timedelta(hours=1))
    await add_item(rt.db, "next_week", start + timedelta(days=7))
    answered_now(
        await client.post(
            "/v1/sandbox/clock", json={"advance": "P1D"}, headers=scratch_app.operator
        )
    )
    ran = await runs(rt.db)
    assert [r["name"] for r in ran] == ["soon", "soon+", "tomorrow"]
    for r in ran:
        assert r["due_at"] <= r["clock_now"] < r["due_at"] + CLOSE


INVALID_MOVES: list[dict[str, object]] = [
    {"advance": "-P1D"},  # backwards
    {"advance": "1 day"},
    {"advance": "P"},
    {"advance": "PXD"},
    {"advance": ""},
    {"advance": 86400},
    {"advance": "P99999Y"},  # past the end of the calendar
    {"to": "9999-12-31T23:59:59Z"},  # nothing could be scheduled after it
    {"to": "2020-01-01T00:00:00Z"},  # backwards
    {"to": "2030-01-01T00:00:00"},  # no time zone
    {"to": "tomorrow"},
    {"advance": "P1D", "to": "2030-01-01T00:00:00Z"},
    {},
    {"advance": "P1D", "speed": "fast"},
]


async def test_invalid_moves_are_422(scratch_app: Probe) -> None:
    before = scratch_app.rt.clock.now()
    for body in INVALID_MOVES:
        r = await scratch_app.client.post(
            "/v1/sandbox/clock", json=body, headers=scratch_app.operator
        )
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"], (body, problem)
    assert scratch_app.rt.clock.now() - before < CLOSE
    assert (await fresh_clock(scratch_app.rt)).now() - before < CLOSE


async def test_an_api_only_process_follows_the_clock_moved_elsewhere(
    scratch: Scratch, settings: Settings
) -> None:
    """`bnpl serve` runs no scheduler loop; its clock must still pick up a move made by another
    process (a worker, or another API pod)."""
    tuned = settings.model_copy(
        update={"database_url": scratch.dsn, "db_pool_max": 3, "scheduler_interval_s": 0.05}
    )
    async with running_probe(tuned) as api_only:
        elsewhere = Clock()
        async with scratch.db.connection() as conn:
            moved = await elsewhere.move_to(conn, elsewhere.now() + timedelta(days=3))
        for _ in range(100):
            if api_only.rt.clock.now() >= moved:
                break
            await asyncio.sleep(0.02)
        assert moved <= api_only.rt.clock.now() < moved + CLOSE
