"""`outbox_at_end`: a request's events are written in one statement when its block ends, in
their order, in its transaction; on another connection, or after a failure, as before."""

from datetime import UTC, datetime

import pytest

from bnpl import messaging
from bnpl.runtime import Runtime

AT = datetime(2026, 12, 5, tzinfo=UTC)


def event(aggregate: str, n: int) -> messaging.NewEvent:
    return messaging.NewEvent("test.outbox", aggregate, {"n": n}, AT)


async def rows_of(rt: Runtime, aggregate: str) -> list[tuple[str, int]]:
    rows = await rt.db.fetch(
        "SELECT event_id, (data->>'n')::int AS n FROM messaging.events "
        "WHERE aggregate_id = $1 ORDER BY id",
        aggregate,
    )
    return [(r["event_id"], r["n"]) for r in rows]


async def test_events_are_held_until_the_block_ends_then_written_in_order(rt: Runtime) -> None:
    aggregate = f"agg_{datetime.now(UTC).timestamp()}"
    async with rt.db.transaction() as conn:
        async with messaging.outbox_at_end(conn):
            first = await messaging.publish_many(conn, [event(aggregate, 1), event(aggregate, 2)])
            second = await messaging.publish(
                conn, "test.outbox", aggregate, {"n": 3}, occurred_at=AT
            )
            held = await conn.fetchval(
                "SELECT count(*) FROM messaging.events WHERE aggregate_id = $1", aggregate
            )
            assert held == 0  # nothing written yet, not even in the transaction
        written = await conn.fetchval(
            "SELECT count(*) FROM messaging.events WHERE aggregate_id = $1", aggregate
        )
        assert written == 3  # written at the block's end, before the commit
    assert await rows_of(rt, aggregate) == [(first[0], 1), (first[1], 2), (second, 3)]


async def test_another_connection_writes_at_once(rt: Runtime) -> None:
    aggregate = f"agg_other_{datetime.now(UTC).timestamp()}"
    async with (
        rt.db.transaction() as conn,
        messaging.outbox_at_end(conn),
        rt.db.transaction() as other,
    ):
        await messaging.publish_many(other, [event(aggregate, 7)])
        assert (
            await other.fetchval(
                "SELECT count(*) FROM messaging.events WHERE aggregate_id = $1", aggregate
            )
            == 1
        )
    assert [n for _, n in await rows_of(rt, aggregate)] == [7]


async def test_a_failed_block_writes_nothing(rt: Runtime) -> None:
    aggregate = f"agg_failed_{datetime.now(UTC).timestamp()}"
    with pytest.raises(RuntimeError):
        async with rt.db.transaction() as conn, messaging.outbox_at_end(conn):
            await messaging.publish_many(conn, [event(aggregate, 1)])
            raise RuntimeError("the request failed")
    assert await rows_of(rt, aggregate) == []
    # and the next block on this task holds nothing over from the failed one
    async with rt.db.transaction() as conn:
        await messaging.publish_many(conn, [event(aggregate, 2)])
    assert [n for _, n in await rows_of(rt, aggregate)] == [2]
