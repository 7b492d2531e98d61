"""The Kafka bus against a real broker: relay, consumer groups, the inbox, retries and dead
letters. Each test has a database, topics and consumer groups of its own."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from bnpl.messaging.kafka import KafkaBus, LocalCluster, OutboxRelay
from bnpl.messaging.kafka.topics import decode, headers_of
from tests.kafka.conftest import Scratch, options_for
from tests.kafka.support import (
    effects,
    emit,
    exactly_once,
    read_topic,
    recorder,
    running,
    wait_for,
)


async def test_relay_and_consumers_deliver_every_event_once_in_aggregate_order(
    kafka: LocalCluster, scratch: Scratch
) -> None:
    db = scratch.db
    options = options_for(kafka)
    bus = KafkaBus(db, poll_interval=0.05, options=options)
    bus.subscribe("probe.record", ["checkout.created", "plan.created"], recorder("probe.record"))

    async def record_all(conn, events):  # type: ignore[no-untyped-def]
        for event in events:
            await recorder("probe.batch")(conn, event)

    bus.subscribe_batch("probe.batch", ["checkout.created"], record_all)
    # One aggregate's events have one topic (their context's): order holds per topic.
    events = [
        ("checkout.created" if n % 2 else "plan.created", f"agg_{n}", seq)
        for seq in range(10)
        for n in range(30)
    ]
    async with running(bus):
        ids = []
        for chunk in range(0, len(events), 50):  # commits spread over time, as the API makes
            ids += await emit(db, events[chunk : chunk + 50])
            await asyncio.sleep(0.02)
        await bus.drain(timeout=60)
        assert await bus.lag(bus.subscriptions["probe.record"]) == 0
    await exactly_once(db, "probe.record", ids)
    checkout_ids = [i for i, e in zip(ids, events, strict=True) if e[0] == "checkout.created"]
    await exactly_once(db, "probe.batch", checkout_ids)
    order: dict[str, list[int]] = defaultdict(list)
    for row in await effects(db, "probe.record"):
        order[row["aggregate_id"]].append(row["seq"])
    assert all(seqs == list(range(10)) for seqs in order.values()), order
    # Every outbox row is marked relayed; each aggregate's events are in one partition.
    assert await db.fetchval("SELECT count(*) FROM messaging.events WHERE position IS NULL") == 0
    messages = read_topic(kafka.bootstrap, options.topic_of("checkout.created"), 150)
    partitions: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        partitions[decode(m.value() or b"").aggregate_id].add(m.partition() or 0)
        assert m.key() is not None
    assert len(messages) == 150 and all(len(p) == 1 for p in partitions.values())


async def test_several_relays_publish_each_event_once(
    kafka: LocalCluster, scratch: Scratch
) -> None:
    options = options_for(kafka, relay_partitions=8)
    dbs = [scratch.db, await scratch.database(), await scratch.database()]
    try:
        ids = []
        for _ in range(6):
            ids += await emit(
                scratch.db, [("plan.created", f"agg_{n % 40}", n) for n in range(200)]
            )
        relays = [OutboxRelay(db, options, batch_size=100) for db in dbs]

        async def relay_all(relay: OutboxRelay) -> int:
            total = 0
            while await relay.pending():
                total += await relay.run_once()
            return total

        counts = await asyncio.gather(*(relay_all(r) for r in relays))
        for relay in relays:
            await relay.close()
    finally:
        for db in dbs[1:]:
            await db.close()
    assert sum(counts) == len(ids) and sum(1 for c in counts if c) >= 2, counts
    messages = read_topic(kafka.bootstrap, options.topic_of("plan.created"), len(ids))
    published = [decode(m.value() or b"").event_id for m in messages]
    assert sorted(published) == sorted(ids)  # each once: none lost, none twice


async def test_a_poison_event_goes_to_the_dead_letters_without_blocking_its_partition(
    kafka: LocalCluster, scratch: Scratch
) -> None:
    db = scratch.db
    options = options_for(kafka, partitions=1)  # the poison and the others share a partition
    bus = KafkaBus(db, poll_interval=0.05, options=options)
    poison = {"agg_poison"}
    bus.subscribe("probe.fragile", ["plan.created"], recorder("probe.fragile", fail_on=poison))
    async with running(bus):
        [bad] = await emit(db, [("plan.created", "agg_poison", 0)])
        good = await emit(db, [("plan.created", f"agg_{n}", n) for n in range(50)])
        # The others are handled while the poison waits in the retry topic.

        async def handled() -> bool:
            return len(await effects(db)) == 50

        await wait_for(handled, timeout=20)
        assert not await db.fetchval("SELECT count(*) FROM messaging.dead_letters")
        await bus.drain(timeout=30)
        dead = await db.fetch("SELECT * FROM messaging.dead_letters")
        assert [(r["consumer"], r["event_id"]) for r in dead] == [("probe.fragile", bad)]
        assert "poison" in dead[0]["error"]
        [letter] = read_topic(kafka.bootstrap, options.dead_letter_topic, 1)
        assert decode(letter.value() or b"").event_id == bad
        assert headers_of(letter)["consumer"] == "probe.fragile"
        await exactly_once(db, "probe.fragile", good)

        # Mended, and replayed by an operator: handled once, no longer a dead letter.
        poison.clear()
        assert await bus.replay("probe.fragile", bad)
        assert not await bus.replay("probe.fragile", bad)
        await bus.drain(timeout=30)
    await exactly_once(db, "probe.fragile", [*good, bad])
    assert not await db.fetchval("SELECT count(*) FROM messaging.dead_letters")
