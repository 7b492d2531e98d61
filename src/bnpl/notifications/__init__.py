"""Notifications (the seed's Notification Service): templates, channels, provider dispatch.

See `service` for how an event becomes an email, an SMS or a push message. Nothing imports
notifications; it exposes only `register`.
"""

from __future__ import annotations

from bnpl.notifications import service
from bnpl.runtime import Runtime

__all__ = ["register"]


def register(rt: Runtime) -> None:
    rt.bus.subscribe_batch("notifications.queue", service.TYPES, service.queue_handler(rt))
    rt.scheduler.register(service.SendReminders(rt))
    rt.scheduler.register(service.SendNotifications(rt))
