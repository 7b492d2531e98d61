"""Events the credit context consumes: account opening and the feature store's upkeep."""

from __future__ import annotations

import logging
from datetime import date, datetime

import asyncpg

from bnpl import identity
from bnpl.credit.accounts import open_account
from bnpl.credit.service import CreditEngine
from bnpl.messaging import Event, Handler
from bnpl.providers import ProviderUnavailable

log = logging.getLogger(__name__)


async def open_account_on_verified(conn: asyncpg.Connection, event: Event) -> None:
    """`credit.open_account`: a verified consumer gets the default credit limit."""
    await open_account(conn, event.consumer_id or event.aggregate_id)


def prefetch_bureau(engine: CreditEngine) -> Handler:
    """`credit.prefetch_bureau`: a newly verified consumer has no repayment history, so the
    bureau will be needed at their first checkout; ask it now, off the checkout's path."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        consumer_id = event.consumer_id or event.aggregate_id
        facts = await identity.consumer_facts(conn, consumer_id)
        if facts is None:
            return
        try:
            # Off the checkout's path: the provider's own timeout, and not through the decision's
            # circuit breaker (a failure here just leaves the decision to ask within its budget).
            report = await engine.bureau.inner.report(
                subject_id=consumer_id,
                first_name=facts.first_name,
                last_name=facts.last_name,
                date_of_birth=facts.date_of_birth,
                country=facts.country,
            )
        except ProviderUnavailable as exc:
            log.info(
                "bureau prefetch failed", extra={"consumer_id": consumer_id, "reason": str(exc)}
            )
            return  # the decision will try again within its own budget
        await engine.features.record_bureau(
            conn, consumer_id, report.score if report.found else None, event.occurred_at
        )

    return handle


def track_repayments(engine: CreditEngine) -> Handler:
    """`credit.track_repayments`: repayment history for the model. `installment.paid` by its
    due date counts one on-time payment; `installment.late` counts one late payment (an
    installment paid after its due date was counted by its `installment.late`, not again)."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        consumer_id = event.consumer_id
        if consumer_id is None:
            return
        if event.type == "installment.late":
            await engine.features.record_repayment(
                conn, consumer_id, on_time=False, event_id=event.event_id
            )
            return
        due = date.fromisoformat(str(event.data["due_date"]))
        paid_at = datetime.fromisoformat(str(event.data["paid_at"]).replace("Z", "+00:00"))
        if paid_at.date() <= due:
            await engine.features.record_repayment(
                conn, consumer_id, on_time=True, event_id=event.event_id
            )

    return handle
