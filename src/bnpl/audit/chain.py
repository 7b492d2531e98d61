"""Recording, sealing and verifying the hash chain."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bnpl.kit.db import Database
from bnpl.kit.ids import new_id

log = logging.getLogger(__name__)

GENESIS = bytes(32)


async def record(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    entity_id: str | None,
    at: datetime,
    request_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> str:
    """Append an audit record in the caller's transaction; returns its id."""
    [record_id] = await record_many(
        conn, [AuditEntry(actor, action, entity_id, data, request_id)], at=at
    )
    return record_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record for `record_many`."""

    actor: str
    action: str
    entity_id: str | None
    data: Mapping[str, Any] | None = None
    request_id: str | None = None


async def record_many(
    conn: asyncpg.Connection, entries: Sequence[AuditEntry], *, at: datetime
) -> list[str]:
    """Append several audit records in one statement (a batch job's), in this order."""
    if not entries:
        return []
    ids = [new_id("aud") for _ in entries]
    rows = [
        (i, e.actor, e.action, e.entity_id, e.request_id, None if e.data is None else dict(e.data))
        for i, e in zip(ids, entries, strict=True)
    ]
    await conn.execute(
        """
        INSERT INTO audit.records (id, at, actor, action, entity_id, request_id, data)
        SELECT r->>0, $1, r->>1, r->>2, r->>3, r->>4, nullif(r->5, 'null'::jsonb)
        FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t (r, n)
        ORDER BY t.n
        """,
        at,
        rows,  # rows as jsonb (kit.db)
    )
    return ids


def link_hash(prev_hash: bytes, index: int, row: Mapping[str, Any]) -> bytes:
    """The hash of one record: its content, its place in the chain and the previous hash."""
    content = json.dumps(
        {
            "index": index,
            "id": row["id"],
            "at": row["at"].isoformat(),
            "actor": row["actor"],
            "action": row["action"],
            "entity_id": row["entity_id"],
            "request_id": row["request_id"],
            "data": row["data"],
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()
    return hashlib.sha256(prev_hash + content).digest()


async def seal(db: Database, batch: int = 2000, *, wait: bool = False) -> int:
    """Link committed, unsealed records into the chain; returns how many were sealed.

    If another process is sealing, 0 at once, or (`wait`) after it is done.
    """
    lock = "FOR UPDATE" if wait else "FOR UPDATE SKIP LOCKED"
    async with db.transaction() as conn:
        head = await conn.fetchrow(
            f"SELECT last_index, last_hash FROM audit.chain_head WHERE id = 1 {lock}"  # noqa: S608 (a lock clause)
        )
        if head is None:
            return 0  # another process is sealing
        rows = await conn.fetch(
            "SELECT seq, id, at, actor, action, entity_id, request_id, data FROM audit.records "
            "WHERE chain_index IS NULL ORDER BY seq LIMIT $1",
            batch,
        )
        if not rows:
            return 0
        index, prev = head["last_index"], bytes(head["last_hash"])
        updates = []
        for row in rows:
            index += 1
            digest = link_hash(prev, index, row)
            updates.append((row["seq"], index, prev, digest))
            prev = digest
        await conn.execute(
            """
            UPDATE audit.records r SET chain_index = u.idx, prev_hash = u.prev, hash = u.h
            FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
                AS u(seq, idx, prev, h)
            WHERE r.seq = u.seq
            """,
            [u[0] for u in updates],
            [u[1] for u in updates],
            [u[2] for u in updates],
            [u[3] for u in updates],
        )
        await conn.execute(
            "UPDATE audit.chain_head SET last_index = $1, last_hash = $2 WHERE id = 1",
            index,
            prev,
        )
        return len(rows)


async def seal_all(db: Database, *, wait: bool = False) -> int:
    """Seal everything committed so far; `wait` for a sealer of another process rather
    than leave its part unsealed (a reader that must see everything sealed). How many."""
    total = 0
    while (sealed := await seal(db, wait=wait)) > 0:
        total += sealed
    return total


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    broken_at: dict[str, Any] | None = None


async def verify(db: Database, page: int = 5000) -> Verification:
    """Walk the whole chain: every index present, every link and every hash recomputed."""
    await seal_all(db, wait=True)
    # One snapshot for the head and every page: a sealer committing in between would
    # otherwise look like records missing at the end.
    async with (
        db.connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        head = await conn.fetchrow(
            "SELECT last_index, last_hash FROM audit.chain_head WHERE id = 1"
        )
        assert head is not None
        prev, expected_index = GENESIS, 0
        while True:
            rows = await conn.fetch(
                "SELECT id, at, actor, action, entity_id, request_id, data, chain_index, "
                "prev_hash, hash FROM audit.records "
                "WHERE chain_index > $1 ORDER BY chain_index LIMIT $2",
                expected_index,
                page,
            )
            for row in rows:
                expected_index += 1
                broken = _check(row, expected_index, prev)
                if broken is not None:
                    return Verification(False, expected_index - 1, broken)
                prev = bytes(row["hash"])
            if len(rows) < page:
                break
        if expected_index != head["last_index"] or prev != bytes(head["last_hash"]):
            return Verification(
                False,
                expected_index,
                {"chain_index": expected_index + 1, "reason": "records missing at the end"},
            )
        return Verification(True, expected_index)


def _check(row: asyncpg.Record, expected_index: int, prev: bytes) -> dict[str, Any] | None:
    where = {"id": row["id"], "chain_index": row["chain_index"]}
    if row["chain_index"] != expected_index:
        return {"chain_index": expected_index, "reason": "record missing"}
    if bytes(row["prev_hash"]) != prev:
        return {**where, "reason": "link to the previous record broken"}
    if link_hash(prev, expected_index, row) != bytes(row["hash"]):
        return {**where, "reason": "record content does not match its hash"}
    return None


class Sealer:
    """Seals new records moments after they commit, in the background: every `interval`
    while there are records to seal; when there were none, it waits for `nudge()` (a commit
    somewhere on the platform, through the event bus's wake-ups) or `idle_interval`."""

    def __init__(self, db: Database, interval: float = 0.2, idle_interval: float = 5.0) -> None:
        self.db = db
        self.interval = interval
        self.idle_interval = idle_interval
        self._task: asyncio.Task[None] | None = None
        self._nudged = asyncio.Event()

    def nudge(self) -> None:
        self._nudged.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-sealer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            self._nudged.clear()
            sealed = 0
            try:
                sealed = await seal_all(self.db)
            except Exception:
                log.exception("audit sealing failed")
            await asyncio.sleep(self.interval)
            if not sealed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), self.idle_interval)
