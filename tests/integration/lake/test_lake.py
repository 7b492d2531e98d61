"""The event archive: every event in date-partitioned Parquet, DuckDB over it, and the
reporting read model rebuilt from it equal to the live one."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from bnpl.lake import Lake, archive, as_csv, query, replay_reporting
from tests.e2e.collections.helpers import purchase
from tests.support import Api

FACTS = (
    "SELECT 'c', id, merchant_id, currency, created_at::text, authorized::text, declined::text "
    "FROM reporting.checkouts UNION ALL "
    "SELECT 'a', kind, reference, merchant_id, currency, amount::text, at::text "
    "FROM reporting.amounts ORDER BY 1, 2, 3"
)


async def test_every_event_is_archived_queried_and_replayed(iso_api: Api, tmp_path: Path) -> None:
    api = iso_api
    db = api.rt.db
    lake = Lake(str(tmp_path / "lake"))
    shop = await api.active_merchant()
    for amount in (40_003, 25_000):
        await purchase(api, merchant=shop, amount=amount)
    await api.settle()
    archived = await archive(db, lake)
    total = await db.fetchval("SELECT count(*) FROM messaging.events")
    assert archived == total > 0
    # Date-partitioned files, each row in the partition of its day.
    files = lake.files()
    assert files and all("/events/date=" in f for f in files)
    for f in files:
        day = f.split("/date=")[1].split("/")[0]
        dates = {t.date().isoformat() for t in pq.read_table(f).column("occurred_at").to_pylist()}
        assert dates == {day}

    _, rows = query(lake, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM events")
    assert rows == [(total, total)]
    ids = {r["event_id"] for r in await db.fetch("SELECT event_id FROM messaging.events")}
    assert {r[0] for r in query(lake, "SELECT id FROM events")[1]} == ids
    _, captured = query(
        lake,
        "SELECT aggregate_id, data->>'captured_amount' FROM events "
        "WHERE type = 'checkout.captured' ORDER BY occurred_at",
    )
    assert [int(r[1]) for r in captured] == [40_003, 25_000]
    text = as_csv(*query(lake, "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY 1"))
    assert text.splitlines()[0] == "type,n" and "checkout.captured,2" in text.splitlines()

    # Later events only are added; nothing twice.
    await purchase(api, merchant=shop, amount=30_000)
    await api.settle()
    added = await archive(db, lake)
    total = await db.fetchval("SELECT count(*) FROM messaging.events")
    assert added > 0 and query(lake, "SELECT count(DISTINCT id), count(*) FROM events")[1] == [
        (total, total)
    ]
    assert await archive(db, lake) == 0

    # The read model rebuilt from the archive alone equals the live one.
    live = [tuple(r) for r in await db.fetch(FACTS)]
    assert live
    await db.execute("TRUNCATE reporting.checkouts, reporting.amounts")
    assert not await db.fetch(FACTS)
    replayed = await replay_reporting(db, lake)
    assert replayed > 0
    assert [tuple(r) for r in await db.fetch(FACTS)] == live
