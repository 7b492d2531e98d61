"""Notifications: what events and due dates tell a consumer, queued, then sent per channel.

1. **Queueing** (the consumer `notifications.queue`): an event that concerns a consumer
   (`templates.BY_EVENT`) becomes one notification per channel of its template, queued in
   the consumer's transaction, once per event. The plan's events keep its reminders (one per
   scheduled installment, 3 days before the due date, at midnight UTC); a paid installment's
   reminder is canceled.
2. **Reminders** (`SendReminders`, due work over the reminder times): due reminders become
   `payment_reminder` notifications, in the transaction that marks them sent.
3. **Sending** (`SendNotifications`, due work over the queued ones): leased and committed,
   then sent outside any transaction: email over SMTP (`BNPL_SMTP_URL`; the sandbox's own
   SMTP server when unset), SMS and push to their providers with the notification id as the
   idempotency key. No answer: tried again 1 minute, 10 minutes and 1 hour later, then
   `failed`; refused (no phone number, an invalid one): `failed` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

import aiosmtplib
import asyncpg

from bnpl import identity
from bnpl.kit.db import Database
from bnpl.kit.ids import new_id
from bnpl.messaging import BatchHandler, Event
from bnpl.notifications import repository as repo
from bnpl.notifications.repository import Notification
from bnpl.notifications.smtp import SmtpSessions, build_message
from bnpl.notifications.templates import BY_EVENT, TEMPLATES, Channel, Template, template_for
from bnpl.providers import MessageResult, ProviderUnavailable

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

SENDER: Final = "BNPL <notifications@bnpl.example>"
LEASE: Final = timedelta(minutes=1)
RETRY_AFTER: Final = (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1))
IN_FLIGHT: Final = 16
REMINDER_DAYS: Final = 3

# The plan's events whose data is the plan's JSON (or has it under `plan`): they keep its
# reminders.
PLAN_EVENTS: Final = frozenset(
    {
        "plan.created",
        "plan.refund_applied",
        "plan.paid_off",
        "plan.refunded",
        "plan.canceled",
        "plan.reactivated",
        "plan.delinquent",
        "plan.charged_off",
    }
)
INSTALLMENT_PAID: Final = "installment.paid"
TYPES: Final = frozenset(BY_EVENT) | PLAN_EVENTS | {INSTALLMENT_PAID}


def remind_at(due: date) -> datetime:
    return datetime.combine(due - timedelta(days=REMINDER_DAYS), time(0), tzinfo=UTC)


def _rows(
    template: Template, consumer_id: str, data: Mapping[str, Any], cause: str
) -> list[tuple[str, str, str, str, str, str, str]]:
    shown = template.render(data)
    return [
        (new_id("ntf"), consumer_id, c.value, template.name, shown.subject, shown.text, cause)
        for c in template.channels
    ]


# --------------------------------------------------------------------------- queueing


async def _sync_reminders(conn: asyncpg.Connection, plan: Mapping[str, Any], at: datetime) -> None:
    """The plan's reminders as its installments now stand: one per scheduled, unpaid
    installment whose reminder time is still ahead; the others canceled."""
    pending = []
    for inst in plan.get("installments") or []:
        due = date.fromisoformat(str(inst["due_date"]))
        unpaid = int(inst["amount_due"]) - int(inst["amount_paid"])
        if inst["status"] == "scheduled" and unpaid > 0 and remind_at(due) > at:
            pending.append(
                (
                    int(inst["seq"]),
                    str(plan["consumer_id"]),
                    due,
                    unpaid,
                    str(plan["currency"]),
                    remind_at(due),
                )
            )
    await repo.set_reminders(conn, str(plan["id"]), pending, keep=[p[0] for p in pending])


def queue_handler(rt: Runtime) -> BatchHandler:
    """`notifications.queue`: the reminders kept in event order, the batch's notifications
    queued in one statement."""

    async def handle(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        rows = []
        for event in events:
            data = event.data
            if event.type == INSTALLMENT_PAID:
                await repo.cancel_reminder(conn, str(data["plan_id"]), int(data["seq"]))
            elif event.type in PLAN_EVENTS:
                # The plan's JSON is the data, or under `plan` (plan.refund_applied;
                # elsewhere `plan` is the plan's kind).
                nested = data.get("plan")
                plan = nested if isinstance(nested, Mapping) else data
                if "installments" in plan:
                    await _sync_reminders(conn, plan, event.occurred_at)
            template = template_for(event.type, data)
            if template is not None and event.consumer_id is not None:
                rows += _rows(template, event.consumer_id, data, event.event_id)
        await repo.queue(conn, rows, rt.clock.now())

    return handle


@dataclass
class SendReminders:
    """`notifications.remind`: 3 days before a due date, the consumer is reminded."""

    rt: Runtime
    name: str = "notifications.remind"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_reminder(conn)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        template = TEMPLATES["payment_reminder"]
        async with db.transaction() as conn:
            due = await repo.claim_reminders(conn, now, limit)
            rows = []
            for r in due:
                data = {"amount": r.amount, "currency": r.currency, "due_date": r.due_date}
                rows += _rows(template, r.consumer_id, data, f"reminder:{r.plan_id}:{r.seq}")
            await repo.queue(conn, rows, now)
        return len(due)


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool
    reference: str | None = None
    error: str | None = None
    final: bool = False  # a refusal: trying again would not help


@dataclass
class SendNotifications:
    """`notifications.send`: the queued notifications, each on its channel."""

    rt: Runtime
    name: str = "notifications.send"
    _smtp: SmtpSessions | None = field(default=None, repr=False)

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_due(conn)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        async with db.transaction() as conn:
            claimed = await repo.claim(conn, now, now + LEASE, limit)
            contacts = await identity.consumers_facts(conn, (n.consumer_id for n in claimed))
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def send(n: Notification) -> Outcome:
            async with gate:
                try:
                    return await self._send(n, contacts.get(n.consumer_id))
                except (ProviderUnavailable, aiosmtplib.SMTPException, OSError) as exc:
                    return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])

        outcomes = await asyncio.gather(*(send(n) for n in claimed))
        attempts = [
            repo.Attempt(n, o.sent, o.reference, o.error, self._retry_at(n, o, now))
            for n, o in zip(claimed, outcomes, strict=True)
        ]
        try:
            async with db.transaction() as conn:
                await repo.record_many(conn, attempts, now)
        except Exception:
            # Not recorded: each is sent again once its lease runs out (a receiver dedupes
            # an email by its Message-ID, SMS and push by the notification id).
            log.exception("recording notifications failed", extra={"count": len(attempts)})
        return len(claimed)

    @staticmethod
    def _retry_at(n: Notification, outcome: Outcome, now: datetime) -> datetime | None:
        if not outcome.sent and not outcome.final and n.attempts < len(RETRY_AFTER):
            return now + RETRY_AFTER[n.attempts]
        return None

    async def _send(self, n: Notification, contact: identity.ConsumerFacts | None) -> Outcome:
        if contact is None:
            return Outcome(False, error="no such consumer", final=True)
        providers = self.rt.providers
        result: MessageResult
        if n.channel == Channel.EMAIL:
            return await self._email(n, contact)
        if n.channel == Channel.SMS:
            if not contact.phone:
                return Outcome(False, error="the consumer has no phone number", final=True)
            result = await providers.sms.send_sms(
                to=contact.phone, body=n.body, idempotency_key=n.id
            )
        else:
            result = await providers.push.send_push(
                user_id=n.consumer_id, title=n.subject, body=n.body, idempotency_key=n.id
            )
        if result.sent:
            return Outcome(True, reference=result.reference)
        return Outcome(False, error=result.code, final=True)

    async def _email(self, n: Notification, contact: identity.ConsumerFacts) -> Outcome:
        url = self.rt.settings.smtp_url
        if url is None:
            return Outcome(False, error="no SMTP server configured (BNPL_SMTP_URL)")
        if self._smtp is None:
            self._smtp = SmtpSessions(url)
            self.rt.closers.append(self._smtp.aclose)
        message = build_message(
            sender=SENDER,
            to=contact.email,
            subject=n.subject,
            text=f"Hi {contact.first_name},\n\n{n.body}\n",
            message_id=f"<{n.id}@bnpl>",
        )
        try:
            await self._smtp.send(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return Outcome(False, error=f"recipient refused: {exc}"[:500], final=True)
        return Outcome(True, reference=n.id)


# --------------------------------------------------------------------------- reading


async def list_notifications(
    conn: asyncpg.Connection, consumer_id: str, *, after: str | None, limit: int
) -> list[Notification]:
    return await repo.list_for(conn, consumer_id, after=after, limit=limit)
