"""Topic names, the message format, and the admin calls (topics created, consumer lag).

One topic per context (`bnpl.events.<context>`), keyed by aggregate id, so the events of one
aggregate land in one partition in the order they were relayed. Beside them one retry topic and
one dead-letter topic for every consumer group (the consumer's name is in a header).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
)

from bnpl.messaging.events import Event

# The context that emits the events of a type's first segment (`plan.created`: installments);
# a type whose segment is not here has a topic of that segment's name.
CONTEXT_OF_SEGMENT: Mapping[str, str] = {
    "consumer": "identity",
    "card": "identity",
    "payment_method": "identity",
    "session": "identity",
    "merchant": "merchants",
    "settlement": "merchants",
    "onboarding": "onboarding",
    "application": "onboarding",
    "checkout": "checkout",
    "capture": "checkout",
    "plan": "installments",
    "installment": "installments",
    "payment": "payments",
    "credit": "credit",
    "ledger": "ledger",
}

LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class KafkaOptions:
    """What the Kafka backend needs of the settings (`BNPL_KAFKA_*`)."""

    bootstrap: str
    prefix: str = "bnpl"
    partitions: int = 6
    replication: int = 1
    min_insync: int | None = None  # None: 2 with three or more replicas, else 1
    relay_partitions: int = 8  # the outbox's share-out between relay processes
    retry_attempts: int = 3  # trips through the retry topic before the dead-letter topic
    retry_delay_s: float = 1.0  # times the attempt number
    session_timeout_ms: int = 10_000  # a consumer that dies is replaced after this
    message_timeout_ms: int = 10_000  # a relay batch not acknowledged by then is tried again

    @property
    def isr(self) -> int:
        if self.min_insync is not None:
            return self.min_insync
        return 2 if self.replication >= 3 else 1

    def topic_of(self, type: str) -> str:
        segment = type.split(".", 1)[0]
        return f"{self.prefix}.events.{CONTEXT_OF_SEGMENT.get(segment, segment)}"

    def topics_of(self, types: Iterable[str]) -> list[str]:
        return sorted({self.topic_of(t) for t in types})

    @property
    def retry_topic(self) -> str:
        return f"{self.prefix}.retry"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.prefix}.dead-letters"

    def group_of(self, consumer: str) -> str:
        return f"{self.prefix}.{consumer}"


def encode(event: Event) -> bytes:
    return orjson.dumps(
        {
            "event_id": event.event_id,
            "type": event.type,
            "aggregate_id": event.aggregate_id,
            "data": dict(event.data),
            "occurred_at": event.occurred_at.isoformat(),
            "merchant_id": event.merchant_id,
            "consumer_id": event.consumer_id,
            "position": event.position,
        }
    )


def decode(value: bytes) -> Event:
    raw = orjson.loads(value)
    return Event(
        event_id=raw["event_id"],
        type=raw["type"],
        aggregate_id=raw["aggregate_id"],
        data=raw["data"],
        occurred_at=datetime.fromisoformat(raw["occurred_at"]),
        merchant_id=raw.get("merchant_id"),
        consumer_id=raw.get("consumer_id"),
        position=raw.get("position"),
    )


def headers_of(message: Message) -> dict[str, str]:
    found: dict[str, str] = {}
    raw = message.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
    for key, value in pairs:
        found[key] = value.decode() if isinstance(value, bytes) else str(value or "")
    return found


def where(message: Message) -> tuple[tuple[str, int], int]:
    """((topic, partition), offset) of a message read from a topic."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return (topic, partition), offset


async def _wait(future: Any) -> Any:
    return await asyncio.wrap_future(future)


async def ensure_topics(admin: AdminClient, options: KafkaOptions, topics: Iterable[str]) -> None:
    """Create the topics that do not exist yet, with the settings' partitions and replicas."""
    metadata = await asyncio.to_thread(admin.list_topics, timeout=10)
    missing = sorted(set(topics) - set(metadata.topics))
    if not missing:
        return
    config = {"min.insync.replicas": str(options.isr)}
    futures = admin.create_topics(
        [NewTopic(t, options.partitions, options.replication, config=config) for t in missing],
        operation_timeout=30,
        request_timeout=30,
    )
    for future in futures.values():
        try:
            await _wait(future)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


async def group_lag(admin: AdminClient, group: str, topics: Sequence[str]) -> int:
    """Messages on `topics` that `group` has not committed yet (summed over partitions)."""
    metadata = await asyncio.to_thread(admin.list_topics, timeout=5)
    partitions = [
        TopicPartition(t, p)
        for t in topics
        if t in metadata.topics
        for p in metadata.topics[t].partitions
    ]
    if not partitions:
        return 0
    [committed_future] = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=5
    ).values()
    ends_futures = admin.list_offsets({tp: LATEST for tp in partitions}, request_timeout=5)
    committed = await _wait(committed_future)
    done = {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions}
    lag = 0
    for tp, future in ends_futures.items():
        end = (await _wait(future)).offset
        lag += max(0, end - max(0, done.get((tp.topic, tp.partition), 0)))
    return lag
