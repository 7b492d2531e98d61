"""Messaging: the transactional outbox, idempotent consumers and the bus backends."""

from bnpl.messaging.bus import BatchHandler, Bus, Handler, PostgresBus, Subscription
from bnpl.messaging.events import (
    PUBLIC_TYPES,
    Event,
    NewEvent,
    dead_letters,
    outbox_at_end,
    public_event,
    publish,
    publish_many,
)

__all__ = [
    "PUBLIC_TYPES",
    "BatchHandler",
    "Bus",
    "Event",
    "Handler",
    "NewEvent",
    "PostgresBus",
    "Subscription",
    "dead_letters",
    "outbox_at_end",
    "public_event",
    "publish",
    "publish_many",
]
