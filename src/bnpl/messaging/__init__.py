"""Messaging: the transactional outbox, idempotent consumers and the bus backends."""

from bnpl.messaging.bus import Bus, Handler, PostgresBus, Subscription
from bnpl.messaging.events import Event, NewEvent, publish, publish_many

__all__ = [
    "Bus",
    "Event",
    "Handler",
    "NewEvent",
    "PostgresBus",
    "Subscription",
    "publish",
    "publish_many",
]
