"""Checkout's time-driven work: expiries, and confirmations interrupted by a crash.

Each change is audited with the actor `system` (DOMAIN.md, "Audit": every state change and
money movement, not only those a request makes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from bnpl import audit, payments
from bnpl.checkout import events
from bnpl.checkout import repository as repo
from bnpl.checkout.domain import CheckoutStatus
from bnpl.checkout.service import cancel_authorization, finish_confirm
from bnpl.kit.db import Database
from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

_LEASE = timedelta(minutes=1)


@dataclass
class ExpireOpenCheckouts:
    """An open checkout not confirmed within 1 hour expires."""

    name: str = "checkout.expire_open"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_due(conn, "expires_at", CheckoutStatus.OPEN.value)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        async with db.transaction() as conn:
            ids = await repo.due_ids(conn, "expires_at", CheckoutStatus.OPEN.value, now, limit)
            for checkout_id in ids:
                checkout = await repo.update(conn, checkout_id, now, status=CheckoutStatus.EXPIRED)
                await events.emit(conn, events.EXPIRED, checkout, at=now)
                await _audit(conn, checkout_id, events.EXPIRED, now)
        return len(ids)


@dataclass
class ExpireAuthorizations:
    """An authorization not captured within 7 days expires: plan canceled, consumer repaid."""

    name: str = "checkout.expire_authorizations"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_due(
                conn, "authorization_expires_at", CheckoutStatus.AUTHORIZED.value
            )

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        async with db.transaction() as conn:
            ids = await repo.due_ids(
                conn, "authorization_expires_at", CheckoutStatus.AUTHORIZED.value, now, limit
            )
            for checkout_id in ids:
                checkout = await repo.get(conn, checkout_id)
                assert checkout is not None
                await cancel_authorization(conn, checkout, status=CheckoutStatus.EXPIRED, at=now)
                await _audit(conn, checkout_id, events.EXPIRED, now)
        return len(ids)


@dataclass
class ResumeConfirmations:
    """A confirmation whose down payment outcome was never recorded (crash, gateway outage)
    is resumed: the charge is retried with its original idempotency key, then settled."""

    rt: Runtime
    name: str = "checkout.resume_confirmations"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_due(conn, "resume_at", CheckoutStatus.CONFIRMING.value)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        # Lease the batch (push resume_at forward) so other workers skip it, then work
        # outside the transaction: the gateway call must not hold database locks.
        async with db.transaction() as conn:
            ids = await repo.due_ids(conn, "resume_at", CheckoutStatus.CONFIRMING.value, now, limit)
            leased = []
            for checkout_id in ids:
                checkout = await repo.update(conn, checkout_id, now, resume_at=now + _LEASE)
                leased.append(checkout)
        for checkout in leased:
            assert checkout.down_payment_id
            async with db.connection() as conn:
                payment = await payments.get_payment(conn, checkout.down_payment_id)
            assert payment is not None
            settlement = await payments.run_charge(
                self.rt.providers.gateway, payment, self.rt.clock
            )
            async with db.transaction() as conn:
                current = await repo.get(conn, checkout.id, lock=True)
                if current is None or current.status is not CheckoutStatus.CONFIRMING:
                    continue  # the request finished it meanwhile (and audited it)
                done = await finish_confirm(
                    conn, self.rt, checkout_id=checkout.id, settlement=settlement, at=now
                )
                if done.status is not CheckoutStatus.CONFIRMING:
                    await _audit(conn, checkout.id, f"checkout.{done.status.value}", now)
        return len(leased)


async def _audit(conn: asyncpg.Connection, checkout_id: str, action: str, at: datetime) -> None:
    await audit.record(conn, actor="system", action=action, entity_id=checkout_id, at=at)
