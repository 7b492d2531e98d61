"""The audit trail: a record per command, sealed into one hash chain in commit order; any
edit or deletion of a sealed record is detected, and the table refuses plain edits.

Tampering happens only in databases of the test's own (`scratch`), never in the shared one.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from bnpl.audit import AuditEntry, record, record_many, seal_all, verify
from bnpl.audit.chain import link_hash
from bnpl.kit.db import Database
from bnpl.kit.ids import new_id
from tests.integration.foundation.conftest import Probe, Scratch
from tests.integration.foundation.probe import merchant_token
from tests.support import bearer

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def write(db: Database, n: int, actor: str = "system") -> list[str]:
    ids = []
    for i in range(n):
        async with db.transaction() as conn:
            ids.append(
                await record(
                    conn,
                    actor=actor,
                    action="probe.written",
                    entity_id=f"itm_{i}",
                    at=NOW,
                    request_id=f"req-{i}",
                    data={"amount": {"amount": 100 * i, "currency": "USD"}, "n": i},
                )
            )
    return ids


async def chain_of(db: Database) -> list[str]:
    rows = await db.fetch("SELECT id FROM audit.records ORDER BY chain_index")
    return [r["id"] for r in rows]


async def as_attacker(db: Database, sql: str, *args: Any) -> None:
    """Someone with database rights bypasses the append-only trigger."""
    async with db.connection() as conn:
        await conn.execute("SET session_replication_role = replica")
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.execute("RESET session_replication_role")


# --- over HTTP, on the shared database -----------------------------------------------------


async def test_every_command_is_recorded_and_the_chain_verifies(
    probe_app: Probe, client: httpx.AsyncClient
) -> None:
    merchant_id = new_id("mer")
    ids = []
    for amount in (100, 200, 300):
        r = await probe_app.client.post(
            "/probe/widgets",
            json={
                "amount": amount,
                "currency": "USD",
                "kind": "tent",
                "card_number": "4242424242424242",
            },
            headers={**bearer(merchant_token(merchant_id)), "X-Request-Id": f"rid-{amount}"},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    # newest first is not promised; pagination by `starting_after` is
    actor = f"merchant:{merchant_id}"
    r = await client.get(f"/v1/audit?actor={actor}&limit=2", headers=probe_app.operator)
    page = r.json()
    assert [x["entity_id"] for x in page["data"]] == ids[:2]
    assert page["has_more"] is True
    assert page["next_cursor"] == page["data"][-1]["id"]
    r = await client.get(
        f"/v1/audit?actor={actor}&limit=2&starting_after={page['next_cursor']}",
        headers=probe_app.operator,
    )
    rest = r.json()
    assert [x["entity_id"] for x in rest["data"]] == ids[2:]
    assert rest["has_more"] is False and rest["next_cursor"] is None

    for entry, widget_id, amount in zip(
        page["data"] + rest["data"], ids, (100, 200, 300), strict=True
    ):
        assert entry["id"].startswith("aud_")
        assert entry["actor"] == actor
        assert entry["action"] == "probe.widget_created"
        assert entry["entity_id"] == widget_id
        assert entry["request_id"] == f"rid-{amount}"
        assert entry["chain_index"] is not None and len(entry["hash"]) == 64  # sealed

    r = await client.get("/v1/audit/verify", headers=probe_app.operator)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"ok", "records"}
    assert body["ok"] is True
    assert body["records"] >= max(e["chain_index"] for e in page["data"] + rest["data"])


async def test_a_broken_chain_is_reported_over_http(scratch: Scratch, scratch_app: Probe) -> None:
    await write(scratch.db, 4)
    await seal_all(scratch.db)
    third = (await chain_of(scratch.db))[2]
    await as_attacker(
        scratch.db, "UPDATE audit.records SET actor = 'operator' WHERE id = $1", third
    )
    r = await scratch_app.client.get("/v1/audit/verify", headers=scratch_app.operator)
    assert r.json() == {
        "ok": False,
        "records": 2,
        "broken_at": {
            "id": third,
            "chain_index": 3,
            "reason": "record content does not match its hash",
        },
    }


# --- the chain itself, in databases of the test's own --------------------------------------


async def test_sealed_chain_verifies(scratch: Scratch) -> None:
    assert await verify(scratch.db) == await verify(scratch.db)  # empty is fine
    assert (await verify(scratch.db)).ok
    await write(scratch.db, 5)
    result = await verify(scratch.db)  # seals first
    assert (result.ok, result.records, result.broken_at) == (True, 5, None)
    rows = await scratch.db.fetch("SELECT * FROM audit.records ORDER BY chain_index")
    prev = bytes(32)
    for index, row in enumerate(rows, start=1):
        assert row["chain_index"] == index
        assert bytes(row["prev_hash"]) == prev
        assert bytes(row["hash"]) == link_hash(prev, index, row)
        prev = bytes(row["hash"])
    head = await scratch.db.fetchrow("SELECT * FROM audit.chain_head")
    assert (head["last_index"], bytes(head["last_hash"])) == (5, prev)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit.records SET data = '{\"n\": 99}' WHERE id = $1",
        "UPDATE audit.records SET actor = 'operator' WHERE id = $1",
        "UPDATE audit.records SET chain_index = chain_index WHERE id = $1",  # even a no-op
        "UPDATE audit.records SET hash = NULL, chain_index = NULL WHERE id = $1",
        "DELETE FROM audit.records WHERE id = $1",
        "TRUNCATE audit.records",
    ],
)
async def test_plain_edits_and_deletes_are_refused(scratch: Scratch, sql: str) -> None:
    ids = await write(scratch.db, 2)
    await seal_all(scratch.db)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await scratch.db.execute(sql, *([ids[0]] if "$1" in sql else []))
    assert (await verify(scratch.db)).ok


async def test_unsealed_records_cannot_be_edited_either(scratch: Scratch) -> None:
    (record_id,) = await write(scratch.db, 1)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await scratch.db.execute("UPDATE audit.records SET action = 'x' WHERE id = $1", record_id)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await scratch.db.execute("DELETE FROM audit.records WHERE id = $1", record_id)
    assert (await verify(scratch.db)).records == 1


async def test_edited_content_is_detected(scratch: Scratch) -> None:
    await write(scratch.db, 5)
    await seal_all(scratch.db)
    chain = await chain_of(scratch.db)
    await as_attacker(
        scratch.db,
        "UPDATE audit.records SET data = jsonb_set(data, '{amount,amount}', '1') WHERE id = $1",
        chain[2],
    )
    result = await verify(scratch.db)
    assert not result.ok
    assert result.records == 2
    assert result.broken_at == {
        "id": chain[2],
        "chain_index": 3,
        "reason": "record content does not match its hash",
    }


async def test_edited_content_with_a_recomputed_hash_breaks_the_next_link(
    scratch: Scratch,
) -> None:
    await write(scratch.db, 5)
    await seal_all(scratch.db)
    chain = await chain_of(scratch.db)
    await as_attacker(
        scratch.db, "UPDATE audit.records SET action = 'probe.forged' WHERE id = $1", chain[2]
    )
    row = await scratch.db.fetchrow("SELECT * FROM audit.records WHERE id = $1", chain[2])
    assert row is not None
    forged = link_hash(bytes(row["prev_hash"]), 3, row)
    await as_attacker(
        scratch.db, "UPDATE audit.records SET hash = $2 WHERE id = $1", chain[2], forged
    )
    result = await verify(scratch.db)
    assert not result.ok
    assert result.broken_at == {
        "id": chain[3],
        "chain_index": 4,
        "reason": "link to the previous record broken",
    }


async def test_deleted_records_are_detected(scratch: Scratch) -> None:
    await write(scratch.db, 5)
    await seal_all(scratch.db)
    chain = await chain_of(scratch.db)
    await as_attacker(scratch.db, "DELETE FROM audit.records WHERE id = $1", chain[1])
    result = await verify(scratch.db)
    assert (result.ok, result.records) == (False, 1)
    assert result.broken_at == {"chain_index": 2, "reason": "record missing"}

    await as_attacker(scratch.db, "DELETE FROM audit.records WHERE id = $1", chain[-1])
    await as_attacker(scratch.db, "DELETE FROM audit.records WHERE id <> ALL($1)", [chain[-1]])
    result = await verify(scratch.db)  # everything gone: the head still remembers
    assert not result.ok
    assert result.broken_at == {"chain_index": 1, "reason": "records missing at the end"}


async def test_deleting_the_newest_record_is_detected(scratch: Scratch) -> None:
    await write(scratch.db, 3)
    await seal_all(scratch.db)
    chain = await chain_of(scratch.db)
    await as_attacker(scratch.db, "DELETE FROM audit.records WHERE id = $1", chain[-1])
    result = await verify(scratch.db)
    assert not result.ok
    assert result.broken_at == {"chain_index": 3, "reason": "records missing at the end"}


async def test_sealing_follows_commit_order(scratch: Scratch) -> None:
    db = scratch.db
    async with db.connection() as slow, db.connection() as fast:
        slow_tx = slow.transaction()
        await slow_tx.start()
        first_written = await record(slow, actor="system", action="slow", entity_id=None, at=NOW)
        async with fast.transaction():
            second_written = await record(
                fast, actor="system", action="fast", entity_id=None, at=NOW
            )
        abandoned_tx = fast.transaction()
        await abandoned_tx.start()
        await record(fast, actor="system", action="rolled_back", entity_id=None, at=NOW)

        await seal_all(db)  # sees only what has committed
        assert await chain_of(db) == [second_written]
        await slow_tx.commit()
        await abandoned_tx.rollback()
        await seal_all(db)

    seqs = {r["id"]: r["seq"] for r in await db.fetch("SELECT id, seq FROM audit.records")}
    assert seqs[first_written] < seqs[second_written]  # written first ...
    assert await chain_of(db) == [second_written, first_written]  # ... committed second
    result = await verify(db)
    assert (result.ok, result.records) == (True, 2)


async def test_concurrent_writers_and_sealers_make_one_chain(scratch: Scratch) -> None:
    processes = [scratch.db, await scratch.database(), await scratch.database()]
    done = asyncio.Event()

    async def writer(db: Database, name: str) -> list[str]:
        ids = []
        for _ in range(40):
            async with db.transaction() as conn:
                ids.append(await record(conn, actor=name, action="w", entity_id=None, at=NOW))
                await asyncio.sleep(random.random() / 500)
        return ids

    async def sealer(db: Database) -> None:
        while not done.is_set():
            await seal_all(db)
            await asyncio.sleep(0)

    async def verifier(db: Database) -> int:
        checks = 0
        while not done.is_set():
            result = await verify(db)
            assert result.ok, result
            checks += 1
        return checks

    try:
        sealers = [asyncio.create_task(sealer(db)) for db in processes]
        verifiers = [asyncio.create_task(verifier(db)) for db in processes[:2]]
        written = await asyncio.gather(*(writer(db, f"w{i}") for i, db in enumerate(processes * 2)))
        done.set()
        await asyncio.gather(*sealers)
        checks = await asyncio.gather(*verifiers)
        assert sum(checks) > 0
        await asyncio.gather(*(seal_all(db) for db in processes))
    finally:
        for db in processes[1:]:
            await db.close()

    everything = {i for ids in written for i in ids}
    assert len(everything) == 240
    rows = await scratch.db.fetch("SELECT id, chain_index FROM audit.records")
    assert {r["id"] for r in rows} == everything
    assert sorted(r["chain_index"] for r in rows) == list(range(1, 241))
    result = await verify(scratch.db)
    assert (result.ok, result.records) == (True, 240)


async def test_record_many_appends_in_order_and_the_chain_verifies(scratch: Scratch) -> None:
    await write(scratch.db, 2)
    entries = [
        AuditEntry("system", "payment.succeeded", f"pay_{i}", {"amount": i}) for i in range(4)
    ]
    entries.append(AuditEntry("system", "probe.no_data", None))
    async with scratch.db.transaction() as conn:
        ids = await record_many(conn, entries, at=NOW)
        assert await record_many(conn, [], at=NOW) == []
    result = await verify(scratch.db)
    assert (result.ok, result.records) == (True, 7)
    assert (await chain_of(scratch.db))[2:] == ids
    rows = await scratch.db.fetch(
        "SELECT actor, action, entity_id, data, at FROM audit.records WHERE id = ANY($1) "
        "ORDER BY chain_index",
        ids,
    )
    assert [(r["action"], r["entity_id"], r["data"]) for r in rows][:2] == [
        ("payment.succeeded", "pay_0", {"amount": 0}),
        ("payment.succeeded", "pay_1", {"amount": 1}),
    ]
    assert rows[-1]["data"] is None and {r["at"] for r in rows} == {NOW}
