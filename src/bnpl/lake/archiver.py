"""Every event of the outbox, archived in date-partitioned Parquet files (pyarrow).

Layout: `<root>/events/date=YYYY-MM-DD/part-<first row id>-<last row id>.parquet` (the date is
the event's `occurred_at`, business time), and `<root>/events/_cursor`, the last row id
archived. The root is a local folder or any URL pyarrow opens (`s3://bucket/prefix`).

Which rows are final: outbox ids come from a sequence when a row is inserted, but a
transaction may commit after a later id is visible. So a run notes the highest visible id and
the current snapshot, waits until every transaction that was running then has ended (the
oldest running transaction is younger than that snapshot's horizon), and archives only up to
that id: no row at or below it can appear afterwards. Runs are serialized by an advisory lock;
files past the cursor (a run that died between a file and the cursor) are removed first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from bnpl.kit.db import Database

log = logging.getLogger(__name__)

LAKE_LOCK = 0x424E4C4B  # "BNLK"

SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),  # the outbox row id: the archive's order
        ("id", pa.string()),  # the event id
        ("type", pa.string()),
        ("aggregate_id", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("merchant_id", pa.string()),
        ("consumer_id", pa.string()),
        ("data", pa.string()),  # the payload, as JSON
    ]
)


@dataclass(frozen=True)
class Lake:
    """Where the archive lives: a local folder or an URL pyarrow opens."""

    url: str

    @property
    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        if "://" in self.url:
            filesystem, path = pafs.FileSystem.from_uri(self.url)
            return filesystem, path.rstrip("/")
        return pafs.LocalFileSystem(), str(Path(self.url).resolve())

    @property
    def events_path(self) -> str:
        return f"{self.filesystem[1]}/events"

    def read_cursor(self) -> int:
        filesystem, _ = self.filesystem
        path = f"{self.events_path}/_cursor"
        if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
            return 0
        with filesystem.open_input_stream(path) as f:
            return int(f.read().decode().strip() or 0)

    def _write_cursor(self, value: int) -> None:
        filesystem, _ = self.filesystem
        with filesystem.open_output_stream(f"{self.events_path}/_cursor") as f:
            f.write(str(value).encode())

    def files(self) -> list[str]:
        filesystem, _ = self.filesystem
        selector = pafs.FileSelector(self.events_path, recursive=True, allow_not_found=True)
        return sorted(
            i.path for i in filesystem.get_file_info(selector) if i.path.endswith(".parquet")
        )

    def _remove_leftovers(self, cursor: int) -> None:
        filesystem, _ = self.filesystem
        for path in self.files():
            first = int(path.rsplit("/", 1)[1].split("-")[1])
            if first > cursor:
                filesystem.delete_file(path)

    def _write(self, rows: list[Any]) -> None:
        by_date: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            by_date[r["occurred_at"].date().isoformat()].append(r)
        filesystem, _ = self.filesystem
        for day, chunk in sorted(by_date.items()):
            folder = f"{self.events_path}/date={day}"
            filesystem.create_dir(folder, recursive=True)
            table = pa.Table.from_pylist(
                [
                    {
                        "seq": r["id"],
                        "id": r["event_id"],
                        "type": r["type"],
                        "aggregate_id": r["aggregate_id"],
                        "occurred_at": r["occurred_at"],
                        "merchant_id": r["merchant_id"],
                        "consumer_id": r["consumer_id"],
                        "data": orjson.dumps(r["data"]).decode(),
                    }
                    for r in chunk
                ],
                schema=SCHEMA,
            )
            name = f"part-{chunk[0]['id']:020d}-{chunk[-1]['id']:020d}.parquet"
            pq.write_table(table, f"{folder}/{name}", filesystem=filesystem)


async def archive(
    db: Database, lake: Lake, batch_size: int = 20_000, settle_timeout: float = 30.0
) -> int:
    """Archive the events not archived yet; how many (0 also when another run holds the
    lock, or a transaction older than the run stays open past `settle_timeout`)."""
    async with db.connection() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LAKE_LOCK):
            return 0
        try:
            cursor = await asyncio.to_thread(lake.read_cursor)
            await asyncio.to_thread(lake._remove_leftovers, cursor)
            horizon, snapshot = await conn.fetchrow(
                "SELECT (SELECT max(id) FROM messaging.events), pg_current_snapshot()::text"
            )
            if horizon is None or horizon <= cursor:
                return 0
            deadline = asyncio.get_running_loop().time() + settle_timeout
            while not await conn.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= "
                "pg_snapshot_xmax($1::text::pg_snapshot)",
                snapshot,
            ):
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("lake archive: an old transaction is still open; later")
                    return 0
                await asyncio.sleep(0.05)
            total = 0
            while cursor < horizon:
                rows = await conn.fetch(
                    """
                    SELECT id, event_id, type, aggregate_id, data, occurred_at, merchant_id,
                           consumer_id
                    FROM messaging.events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3
                    """,
                    cursor,
                    horizon,
                    batch_size,
                )
                if not rows:
                    break
                await asyncio.to_thread(lake._write, rows)
                cursor = rows[-1]["id"]
                await asyncio.to_thread(lake._write_cursor, cursor)
                total += len(rows)
            return total
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LAKE_LOCK)
