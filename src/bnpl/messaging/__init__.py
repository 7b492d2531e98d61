"""Messaging: the transactional outbox, idempotent consumers and the bus backends."""

from bnpl.messaging.bus import Bus, Handler, PostgresBus, Subscription
from bnpl.messaging.events import Event, publish

__all__ = ["Bus", "Event", "Handler", "PostgresBus", "Subscription", "publish"]
