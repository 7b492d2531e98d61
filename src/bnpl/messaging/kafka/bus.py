"""The Kafka backend of the bus: outbox relay -> topics keyed by aggregate id -> consumer groups.

Contexts subscribe exactly as on the PostgreSQL bus (`subscribe`, `subscribe_batch`) and their
handlers do not change: each still runs in a transaction that first records the event in the
consumer's inbox (`messaging.inbox`), so a message delivered twice is handled once.

- Producing: `OutboxRelay` (relay.py) in every worker process; `wake()` and LISTEN/NOTIFY wake
  it as they wake the PostgreSQL bus's sequencer.
- Consuming: every subscription is a consumer group (`bnpl.<consumer>`) over the topics of the
  types it wants, plus the retry topic. Each worker process running a subscription is one
  member of its group, so processes share the partitions, and when one dies the others take
  its partitions over (after `session_timeout_ms`). A member reads a batch, handles it (a batch
  consumer in one transaction, others per aggregate in order, aggregates concurrently) and
  commits the batch's offsets only then: the inbox has recorded every event of the batch
  first. A member that dies mid-batch leaves its offsets where they were; the next owner reads
  the batch again and the inbox skips what was done.
- Failures: an event whose handler still fails after a few quick tries goes to the retry topic
  (`bnpl.retry`, with the consumer's name, attempt and due time in headers) and the partition
  moves on: a poison event never blocks the events behind it. The events of the same
  aggregate behind it in that batch follow it there, so they stay after it. A retry message
  not yet due pauses its retry partition (seek back, resume when due) without stopping the
  group's event partitions. After `retry_attempts` trips the event goes to the dead-letter
  topic (`bnpl.dead-letters`) and to `messaging.dead_letters`, where operators see it
  (`GET /v1/dead-letters`) and replay it (`POST .../replay`, back through the retry topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import Gauge

from bnpl.messaging.bus import PostgresBus, Subscription
from bnpl.messaging.events import Event
from bnpl.messaging.kafka.relay import OutboxRelay, RelayError, producer_config
from bnpl.messaging.kafka.topics import (
    KafkaOptions,
    decode,
    encode,
    ensure_topics,
    group_lag,
    headers_of,
    where,
)

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "bnpl_kafka_consumer_lag",
    "Messages not yet committed by a consumer group, over its topics and the retry topic",
    ["group"],
)
OUTBOX_UNRELAYED = Gauge(
    "bnpl_kafka_outbox_unrelayed", "Committed events not yet published to Kafka"
)

TP = tuple[str, int]
CLIENT_LOG = logging.getLogger("bnpl.kafka.client")  # librdkafka's own messages


@dataclass
class KafkaBus(PostgresBus):
    """The bus on Kafka (`BNPL_KAFKA_BOOTSTRAP`). It keeps the PostgreSQL bus's subscriptions,
    wake-ups (`wake`, `on_wake`, LISTEN/NOTIFY) and inbox; its cycle relays the outbox instead
    of sequencing it, and its consumers read Kafka instead of cursors."""

    options: KafkaOptions = field(kw_only=True)
    in_process_attempts: int = 3  # quick tries before the retry topic
    consume_batch: int = 500
    _executor: ThreadPoolExecutor | None = None
    _admin: AdminClient | None = None
    _relay: OutboxRelay | None = None
    _producer: Producer | None = None
    _consumers: list[asyncio.Task[None]] = field(default_factory=list)
    _topics: set[str] = field(default_factory=set)
    _topics_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _preparer: asyncio.Task[None] | None = None
    _metrics_at: float = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        self._executor = ThreadPoolExecutor(
            max_workers=len(self.subscriptions) + 4, thread_name_prefix="kafka"
        )
        self._preparer = asyncio.create_task(self._prepare(), name="kafka-topics")
        await self._listen()
        await self.start_notifier()
        self._task = asyncio.create_task(self._loop(), name="kafka-relay")
        for sub in list(self.subscriptions.values()):
            self._consumers.append(
                asyncio.create_task(self._consume(sub), name=f"kafka-{sub.name}")
            )

    async def stop(self) -> None:
        self._running = False
        self._topics_ready.set()  # consumers still waiting for the topics: they return now
        await super().stop()
        if self._preparer is not None:
            self._preparer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._preparer
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
        if self._relay is not None:
            await self._relay.close()
        if self._producer is not None:
            await self._run(self._producer.flush, 5)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            config: dict[str, Any] = {
                "bootstrap.servers": self.options.bootstrap,
                "socket.connection.setup.timeout.ms": 3000,
                "logger": CLIENT_LOG,
            }
            self._admin = AdminClient(config)
        return self._admin

    @property
    def relay(self) -> OutboxRelay:
        if self._relay is None:
            self._relay = OutboxRelay(
                self.db, self.options, self._executor, ensure=self.ensure_topics
            )
        return self._relay

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(producer_config(self.options))
        return self._producer

    def _all_topics(self) -> set[str]:
        topics = {self.options.retry_topic, self.options.dead_letter_topic}
        for sub in self.subscriptions.values():
            topics.update(self.options.topics_of(sub.types))
        return topics

    async def ensure_topics(self, topics: set[str]) -> None:
        """Create the topics not known to exist yet (partitions and replicas of the settings)."""
        missing = topics - self._topics
        if missing:
            await ensure_topics(self.admin, self.options, missing)
            self._topics |= missing

    async def _prepare(self) -> None:
        """Topics created at start-up; retried while the brokers cannot be reached."""
        while True:
            try:
                await self.ensure_topics(self._all_topics())
                self._topics_ready.set()
                return
            except Exception:
                log.warning("creating the Kafka topics failed; retrying", exc_info=True)
                await asyncio.sleep(2)

    # --- the relay (the cycle of the PostgreSQL bus's loop) -------------------------------

    async def run_once(self) -> bool:
        try:
            return await self.relay.run_once() > 0
        except RelayError as exc:
            log.warning("outbox relay: %s", exc)
            return False

    async def drain(self, timeout: float = 30.0) -> None:
        """Return once every committed event is published and every consumer group of this
        process's subscriptions has committed past it (the workers consume; in a process
        without consumers this waits for them)."""
        async with asyncio.timeout(timeout):
            while True:
                while await self.run_once():
                    pass
                # The lags count only what was published before they were read, and a
                # handler commits the events it emits before its group's offsets: so the
                # outbox must show nothing new (neither pending nor relayed) across them.
                before = await self._outbox_state()
                if (
                    not before[1]
                    and await self._groups_caught_up()
                    and await self._outbox_state() == before
                ):
                    return
                await asyncio.sleep(0.05)

    async def _outbox_state(self) -> tuple[int | None, bool]:
        """(the last relayed position, whether any event waits to be relayed)."""
        row = await self.db.fetchrow(
            "SELECT (SELECT max(position) FROM messaging.events) AS last, "
            "EXISTS (SELECT 1 FROM messaging.events WHERE position IS NULL) AS pending"
        )
        assert row is not None
        return row["last"], row["pending"]

    async def _groups_caught_up(self) -> bool:
        try:
            lags = await asyncio.gather(*(self.lag(sub) for sub in self.subscriptions.values()))
        except KafkaException as exc:  # a broker just back: its coordinator still loading
            log.info("reading the consumer lag failed: %s", exc)
            return False
        return not any(lags)

    async def lag(self, sub: Subscription) -> int:
        topics = [*self.options.topics_of(sub.types), self.options.retry_topic]
        try:
            return await group_lag(self.admin, self.options.group_of(sub.name), topics)
        except KafkaException:
            # An admin client that lived through a broker's restart may never hear back
            # from the group coordinator: the next call gets a new one.
            self._admin = None
            raise

    # --- operators --------------------------------------------------------------------------

    async def broker_check(self) -> str:
        try:
            await asyncio.to_thread(self.admin.list_topics, timeout=2)
            return "ok"
        except Exception as exc:
            return f"error: {type(exc).__name__}"

    async def refresh_metrics(self, max_age: float = 2.0) -> None:
        """Consumer lag per group and the unrelayed outbox, for `/metrics`."""
        if time.monotonic() - self._metrics_at < max_age:
            return
        self._metrics_at = time.monotonic()
        OUTBOX_UNRELAYED.set(
            await self.db.fetchval("SELECT count(*) FROM messaging.events WHERE position IS NULL")
        )
        subs = list(self.subscriptions.values())
        lags = await asyncio.gather(*(self.lag(s) for s in subs), return_exceptions=True)
        for sub, lag in zip(subs, lags, strict=True):
            if isinstance(lag, int):
                CONSUMER_LAG.labels(self.options.group_of(sub.name)).set(lag)

    async def replay(self, consumer: str, event_id: str) -> bool:
        """Send a dead letter back to its consumer (through the retry topic); False if there
        is no such dead letter."""
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                """
                SELECT e.event_id, e.type, e.aggregate_id, e.data, e.occurred_at, e.merchant_id,
                       e.consumer_id, e.position
                FROM messaging.dead_letters d JOIN messaging.events e USING (event_id)
                WHERE d.consumer = $1 AND d.event_id = $2
                FOR UPDATE OF d
                """,
                consumer,
                event_id,
            )
            if row is None:
                return False
            await self._to_retry(consumer, [(Event.from_row(row), 0, "replayed")], delay=0.0)
            await conn.execute(
                "DELETE FROM messaging.dead_letters WHERE consumer = $1 AND event_id = $2",
                consumer,
                event_id,
            )
        return True

    # --- consumers --------------------------------------------------------------------------

    def _consumer_config(self, sub: Subscription) -> dict[str, object]:
        group = self.options.group_of(sub.name)
        session = self.options.session_timeout_ms
        return {
            "bootstrap.servers": self.options.bootstrap,
            "group.id": group,
            "client.id": f"{group}-{os.getpid()}",
            "logger": CLIENT_LOG,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session,
            "heartbeat.interval.ms": max(100, session // 5),
            "fetch.wait.max.ms": 100,
            "socket.connection.setup.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 1000,
        }

    def _subscribed(self, sub: Subscription) -> bool:
        # `bnpl worker --consumers` removes the others right after the start.
        return self._running and self.subscriptions.get(sub.name) is sub

    async def _consume(self, sub: Subscription) -> None:
        await self._topics_ready.wait()
        if not self._subscribed(sub):
            return
        consumer = Consumer(self._consumer_config(sub))
        consumer.subscribe([*self.options.topics_of(sub.types), self.options.retry_topic])
        resume_at: dict[TP, float] = {}
        try:
            while self._subscribed(sub):
                now = time.time()
                due = [tp for tp, at in resume_at.items() if at <= now]
                if due:
                    for tp in due:
                        del resume_at[tp]
                    with contextlib.suppress(KafkaException):
                        consumer.resume([TopicPartition(*tp) for tp in due])
                # consume() returns as soon as messages arrive: the wait only bounds how late
                # a stop or a due retry is noticed (and what an idle worker costs).
                wait = min([1.0, *(at - now for at in resume_at.values())])
                try:
                    messages: list[Message] = await self._run(
                        consumer.consume, self.consume_batch, max(0.01, wait)
                    )
                except KafkaException as exc:  # a fatal error of the client: a new one
                    log.error("kafka consumer failed: %s", exc, extra={"consumer": sub.name})
                    await self._run(consumer.close)
                    await asyncio.sleep(1.0)
                    consumer = Consumer(self._consumer_config(sub))
                    consumer.subscribe(
                        [*self.options.topics_of(sub.types), self.options.retry_topic]
                    )
                    resume_at.clear()
                    continue
                good = []
                for m in messages:
                    if m.error() is None:
                        good.append(m)
                    else:
                        log.warning(
                            "kafka consumer error: %s", m.error(), extra={"consumer": sub.name}
                        )
                if not good or not self._subscribed(sub):
                    continue
                try:
                    done = await self._process(sub, consumer, good, resume_at)
                except Exception:
                    log.exception(
                        "kafka batch failed; reading it again", extra={"consumer": sub.name}
                    )
                    self._rewind(consumer, good)
                    await asyncio.sleep(1.0)
                    continue
                if done:
                    commit = [TopicPartition(t, p, o) for (t, p), o in done.items()]
                    try:
                        await self._run(
                            functools.partial(consumer.commit, offsets=commit, asynchronous=False)
                        )
                    except KafkaException as exc:
                        # Partitions taken away meanwhile: their next owner reads the batch
                        # again and the inbox skips what was handled.
                        log.warning("kafka commit failed: %s", exc, extra={"consumer": sub.name})
        finally:
            await self._run(consumer.close)

    @staticmethod
    def _rewind(consumer: Consumer, messages: Sequence[Message]) -> None:
        first: dict[TP, int] = {}
        for m in messages:
            tp, offset = where(m)
            first[tp] = min(first.get(tp, offset), offset)
        for (topic, partition), offset in first.items():
            with contextlib.suppress(KafkaException):
                consumer.seek(TopicPartition(topic, partition, offset))

    async def _process(
        self,
        sub: Subscription,
        consumer: Consumer,
        messages: Sequence[Message],
        resume_at: dict[TP, float],
    ) -> dict[TP, int]:
        """Handle a batch; the offsets to commit (all of it but paused retry messages)."""
        offsets: dict[TP, int] = {}
        events: list[Event] = []
        retries: list[Message] = []
        for m in messages:
            tp, offset = where(m)
            if tp[0] == self.options.retry_topic:
                retries.append(m)
                continue
            offsets[tp] = offset + 1
            try:
                event = decode(m.value() or b"")
            except Exception:
                log.exception(
                    "undecodable message skipped", extra={"topic": tp[0], "offset": m.offset()}
                )
                continue
            if event.type in sub.types:
                events.append(event)
        if events:
            await self._handle_events(sub, events)
        paused: set[TP] = set()
        for m in retries:
            tp, offset = where(m)
            if tp in paused:
                continue
            headers = headers_of(m)
            if headers.get("consumer") != sub.name:
                offsets[tp] = offset + 1
                continue
            due = float(headers.get("not_before", "0"))
            if due > time.time():
                # Not yet: read this partition again from here once it is due.
                paused.add(tp)
                part = TopicPartition(tp[0], tp[1], offset)
                consumer.pause([part])
                consumer.seek(part)
                resume_at[tp] = due
                continue
            await self._handle_retry(
                sub, decode(m.value() or b""), int(headers.get("attempt", "1"))
            )
            offsets[tp] = offset + 1
        if events or retries:
            for callback in self._wake_callbacks:
                callback()
        return offsets

    async def _handle_events(self, sub: Subscription, events: list[Event]) -> None:
        if sub.batch and await self._handle_together_once(sub, events):
            return
        by_aggregate: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_aggregate[event.aggregate_id].append(event)
        gate = asyncio.Semaphore(self.concurrency)
        diverted: list[tuple[Event, int, str]] = []

        async def run_in_order(chain: list[Event]) -> None:
            async with gate:
                blocked: str | None = None
                for event in chain:
                    if blocked is not None:
                        diverted.append((event, 0, f"behind {blocked}"))
                        continue
                    error = await self._attempt(sub, event, self.in_process_attempts)
                    if error is not None:
                        blocked = event.event_id
                        diverted.append((event, 1, error))

        await asyncio.gather(*(run_in_order(chain) for chain in by_aggregate.values()))
        if diverted:
            log.warning(
                "events sent to the retry topic",
                extra={"consumer": sub.name, "events": [e.event_id for e, _, _ in diverted]},
            )
            await self._to_retry(sub.name, diverted)

    async def _handle_together_once(self, sub: Subscription, events: list[Event]) -> bool:
        """A batch consumer's batch in one transaction; False if it failed (then one by one)."""
        try:
            async with self.db.transaction() as conn:
                await self._record_and_handle(conn, sub, events)
            return True
        except Exception:
            log.warning(
                "batch failed, handling its events one by one",
                exc_info=True,
                extra={"consumer": sub.name, "events": len(events)},
            )
            return False

    async def _attempt(self, sub: Subscription, event: Event, attempts: int) -> str | None:
        """Handle one event through the inbox; None, or the last error after `attempts`."""
        error = "no attempt"
        for attempt in range(1, attempts + 1):
            try:
                async with self.db.transaction() as conn:
                    fresh = await conn.fetchval(
                        "INSERT INTO messaging.inbox (consumer, event_id) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING RETURNING true",
                        sub.name,
                        event.event_id,
                    )
                    if fresh:
                        await sub.handler(conn, event)
                return None
            except Exception as exc:
                error = repr(exc)[:2000]
                if attempt < attempts:
                    await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
        return error

    async def _handle_retry(self, sub: Subscription, event: Event, attempt: int) -> None:
        error = await self._attempt(sub, event, 1)
        if error is None:
            return
        if attempt >= self.options.retry_attempts:
            await self._dead_letter(sub.name, event, error)
        else:
            await self._to_retry(sub.name, [(event, attempt + 1, error)])

    async def _produce(
        self, topic: str, items: list[tuple[Event, list[tuple[str, str | bytes | None]]]]
    ) -> None:
        producer = self.producer
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for event, headers in items:
            producer.produce(
                topic,
                key=event.aggregate_id.encode(),
                value=encode(event),
                headers=headers,
                on_delivery=delivered,
            )
        left = await self._run(producer.flush, self.options.message_timeout_ms / 1000 + 5)
        if failures or left:
            if any(f.fatal() for f in failures):
                self._producer = None
            raise RelayError(f"{topic}: {failures[0] if failures else f'{left} unacknowledged'}")

    async def _to_retry(
        self, consumer: str, items: list[tuple[Event, int, str]], delay: float | None = None
    ) -> None:
        now = time.time()
        await self._produce(
            self.options.retry_topic,
            [
                (
                    event,
                    [
                        ("consumer", consumer.encode()),
                        ("attempt", str(attempt).encode()),
                        (
                            "not_before",
                            str(
                                now
                                + (
                                    self.options.retry_delay_s * max(attempt, 1)
                                    if delay is None
                                    else delay
                                )
                            ).encode(),
                        ),
                        ("error", error[:500].encode()),
                    ],
                )
                for event, attempt, error in items
            ],
        )

    async def _dead_letter(self, consumer: str, event: Event, error: str) -> None:
        log.error(
            "consumer gave up on event",
            extra={"consumer": consumer, "event_id": event.event_id, "error": error[:200]},
        )
        await self._produce(
            self.options.dead_letter_topic,
            [(event, [("consumer", consumer.encode()), ("error", error[:2000].encode())])],
        )
        await self.db.execute(
            "INSERT INTO messaging.dead_letters (consumer, event_id, error) VALUES ($1, $2, $3) "
            "ON CONFLICT (consumer, event_id) DO UPDATE SET error = $3, failed_at = now()",
            consumer,
            event.event_id,
            error,
        )
