"""Collections: autopay on due dates, soft-decline retries, consumer payments and new cards.

A collection is one payment per amount due, with one gateway attempt per try: on the due
date, then 1, 3 and 7 days after it when the card is soft-declined. Every step commits its
state BEFORE the gateway is called (the payment, its attempt number and so the attempt's
idempotency key), and the plan holds a short lease while a charge is in flight. A worker
killed at any point leaves either nothing sent (the lease runs out, the attempt is made) or
an attempt in flight (re-sent with the same key, so the gateway answers what it did the
first time): an installment is never charged twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import asyncpg

from bnpl import audit, identity, ledger, payments
from bnpl.installments import repository
from bnpl.installments.domain import (
    Installment,
    PlanStatus,
    assess_late_fees,
    collectible_due,
    payoff_amount,
    plan_status_for,
    retry_date,
)
from bnpl.installments.models import PlanNotFound
from bnpl.installments.repository import PlanRecord
from bnpl.installments.service import (
    OPEN_STATUSES,
    apply_payment,
    book,
    charge_off,
    midnight,
    posting,
    replan_collections,
    save_assessment,
)
from bnpl.kit.db import Database
from bnpl.kit.errors import conflict, not_found, unprocessable
from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # consumer payments: how long other workers leave the plan alone
TRANSIENT_BACKOFF = timedelta(minutes=5)  # gateway unreachable: when to re-send the attempt
HARD_DECLINE = payments.Failure.HARD
SOFT_DECLINE = payments.Failure.SOFT


@dataclass(frozen=True)
class Claim:
    """A charge about to be sent: the payment, which attempt, and what it is for.

    `due_through` is the latest due date the charge covers: soft-decline retries count from
    it, and its automatic attempts are exhausted through it. `autopay` is False for a payment
    the consumer makes (never retried automatically; it leaves autopay as it was, resuming at
    `resume_at`).
    """

    plan_id: str
    payment: payments.Payment
    attempt: int
    due_through: date
    autopay: bool = True
    resume_at: datetime | None = None
    # The plan as the claim left it: settling reuses its installments if its version is
    # still the stored one (they cannot have changed).
    record: PlanRecord | None = None


async def _save_collection(conn: asyncpg.Connection, record: PlanRecord) -> PlanRecord:
    await repository.save_collection_state(
        conn,
        record.id,
        collection_due_at=record.collection_due_at,
        collection_payment_id=record.collection_payment_id,
        collection_attempt=record.collection_attempt,
        collection_exhausted_through=record.collection_exhausted_through,
        autopay_blocked=record.autopay_blocked,
        charge_off_at=record.charge_off_at,
    )
    return record


def _falling_due(record: PlanRecord, today: date, also: Sequence[int] = ()) -> list[int]:
    """The installments whose interest is to be booked now: due (or paid early: `also`),
    still open, and not booked before."""
    return [
        i.seq
        for i in record.installments
        if i.interest > 0
        and i.seq not in record.accrued
        and i.status.is_open
        and (i.due_date <= today or i.seq in also)
    ]


def interest_falling_due(
    record: PlanRecord, today: date, also: Sequence[int] = ()
) -> tuple[PlanRecord, list[int], ledger.Posting | None]:
    """`accrue_due_interest` as data: the record with the interest of the installments
    falling due marked booked (its version as it was), their seqs, and the entry booking it
    (None: nothing falls due). The caller writes both, in one transaction."""
    seqs = _falling_due(record, today, also)
    if not seqs:
        return record, seqs, None
    amount = sum(i.interest for i in record.installments if i.seq in seqs)
    booked = record._replace(accrued=record.accrued | frozenset(seqs))
    return booked, seqs, posting(record, "plan.interest_due", ledger.interest_accrual(amount))


async def accrue_due_interest(
    conn: asyncpg.Connection,
    record: PlanRecord,
    at: datetime,
    also: Sequence[int] = (),
    *,
    through: date | None = None,
) -> PlanRecord:
    """Book the interest of installments that fell due by `through` (default: `at`'s day),
    or are being paid early, once; the updated record (its version went up)."""
    booked, seqs, entry = interest_falling_due(record, through or at.date(), also)
    if entry is None:
        return record
    await repository.mark_accrued_many(conn, [(record.id, record.consumer_id, s) for s in seqs])
    await ledger.post_many(conn, [entry], at=at)
    return booked._replace(version=record.version + 1)


# --------------------------------------------------------------------------- claiming


async def prepare_claim(
    conn: asyncpg.Connection, rt: Runtime, record: PlanRecord, now: datetime
) -> Claim | None:
    """Decide what to charge for one locked plan and record it; None if nothing to send."""
    lease = timedelta(seconds=rt.settings.collection_lease_s)
    record = await accrue_due_interest(conn, record, now)
    due = collectible_due(record.installments, now.date())
    amount = sum(i.unpaid_amount for i in due)
    current = (
        await payments.get_payment(conn, record.collection_payment_id)
        if record.collection_payment_id
        else None
    )
    if current is not None and current.status is payments.PaymentStatus.PROCESSING:
        # An attempt was sent (or was about to be) when its worker stopped: re-send it
        # with the same key. The gateway answers what it did, and charges nothing twice.
        await _save_collection(conn, record._replace(collection_due_at=now + lease))
        # A consumer's own payment (a payoff, or with a card other than the plan's) keeps its
        # rules when resumed: never retried automatically, autopay left as it is.
        autopay = (
            current.kind is payments.PaymentKind.INSTALLMENT
            and current.payment_method_id == record.payment_method_id
        )
        return Claim(
            record.id, current, record.collection_attempt, due_through(due, now), autopay=autopay
        )
    if amount == 0:
        if current is not None:
            await payments.cancel(conn, current.id, at=now)
        await _save_collection(
            conn, record._replace(collection_payment_id=None, collection_attempt=0)
        )
        await replan_collections(conn, record._replace(collection_payment_id=None))
        return None
    token = await identity.payment_method_token(conn, record.consumer_id, record.payment_method_id)
    if token is None:  # the card was removed: autopay waits for a new payment method
        await _save_collection(
            conn,
            record._replace(
                autopay_blocked=True,
                collection_due_at=None,
                collection_payment_id=None,
                collection_attempt=0,
            ),
        )
        return None
    if current is not None and current.amount == amount and current.gateway_token == token:
        attempt = record.collection_attempt + 1
        await payments.reopen(conn, current.id, at=now)
        payment = current
    else:
        if current is not None:
            await payments.cancel(conn, current.id, at=now)
        attempt = 1
        payment = await payments.open_charge(
            conn,
            kind=payments.PaymentKind.INSTALLMENT,
            consumer_id=record.consumer_id,
            amount=amount,
            currency=record.currency,
            payment_method_id=record.payment_method_id,
            gateway_token=token,
            plan_id=record.id,
            at=now,
        )
    await _save_collection(
        conn,
        record._replace(
            collection_payment_id=payment.id,
            collection_attempt=attempt,
            collection_due_at=now + lease,
        ),
    )
    return Claim(record.id, payment, attempt, due_through(due, now))


def due_through(due: Sequence[Installment], now: datetime) -> date:
    """The latest due date among what a collection charges (the due date it is for)."""
    return max((i.due_date for i in due), default=now.date())


# --------------------------------------------------------------------------- settling


async def settle_claim(
    conn: asyncpg.Connection,
    rt: Runtime,
    claim: Claim,
    settlement: payments.Settlement | None,
    now: datetime,
) -> payments.PaymentStatus:
    """Record one charge's outcome on the payment and the plan (None: the breaker was open)."""
    record = await repository.lock_plan(conn, claim.plan_id)
    assert record is not None
    payment = await payments.get_payment(conn, claim.payment.id, with_attempts=False)
    assert payment is not None
    # From the payment itself, so a payoff resumed after a crash is still applied as one, and
    # as of the day it was quoted and charged (it may settle after a due date has passed).
    kind: Literal["installment", "prepayment"] = (
        "prepayment" if payment.kind is payments.PaymentKind.PREPAYMENT else "installment"
    )
    as_of = payment.created_at.date() if kind == "prepayment" else None
    # Interest that fell due is booked now if the claim did not (a batch claim leaves it to
    # the settling, which books it with the payment), whatever the gateway answered; not on
    # a plan closed meanwhile (a charged-off plan's receivables are written off). A payoff
    # books only what was due when it was quoted: later interest is what it waives.
    if record.status in OPEN_STATUSES:
        record = await accrue_due_interest(conn, record, now, through=as_of)
    if payment.status is not payments.PaymentStatus.PROCESSING:
        return payment.status  # already settled by another worker (same key, same answer)
    if record.collection_payment_id != payment.id:
        log.warning("collection payment no longer the plan's", extra={"payment": payment.id})
    if settlement is None or settlement.failure is payments.Failure.TRANSIENT:
        # Nothing known yet: re-send the same attempt later (same key, never twice).
        if settlement is not None:
            await _settle(conn, record, payment, settlement, now)
        await _save_collection(conn, record._replace(collection_due_at=now + TRANSIENT_BACKOFF))
        return payments.PaymentStatus.PROCESSING

    cleared = record._replace(collection_payment_id=None, collection_attempt=0)
    if settlement.succeeded:
        status = await _settle(conn, record, payment, settlement, now)
        await _save_collection(conn, cleared)
        await apply_collected(conn, rt, cleared, payment, now, kind=kind, as_of=as_of)
        return status

    if not claim.autopay:
        # The consumer's own payment failed: nothing is retried, and autopay goes on as it
        # was planned (a decline of the card the consumer chose says nothing of the plan's).
        status = await _settle(conn, record, payment, settlement, now)
        await _save_collection(conn, cleared)
        replanned = await replan_collections(conn, cleared)
        resume = claim.resume_at
        if (
            resume is not None
            and replanned.collection_due_at is not None
            and replanned.collection_due_at < resume
        ):
            # A retry was waiting for a later day: it keeps its day.
            await _save_collection(conn, replanned._replace(collection_due_at=resume))
        return status

    if record.payment_method_id != payment.payment_method_id:
        # The consumer set a new card while this charge of the old one was in flight: the
        # decline says nothing of the new card, which is attempted at once (DOMAIN.md).
        status = await _settle(conn, record, payment, settlement, now)
        await _save_collection(conn, cleared._replace(collection_due_at=now))
        return status

    retry_at = None
    if settlement.failure is SOFT_DECLINE and payment.kind is payments.PaymentKind.INSTALLMENT:
        day = retry_date(claim.due_through, now.date())
        retry_at = midnight(day) if day is not None else None
    status = await _settle(conn, record, payment, settlement, now, retry_at)
    if retry_at is not None:
        await _save_collection(conn, record._replace(collection_due_at=retry_at))
    elif settlement.failure is HARD_DECLINE:
        await _save_collection(conn, cleared._replace(autopay_blocked=True, collection_due_at=None))
    else:  # soft decline, attempts exhausted: wait for the next installment's due date
        exhausted = cleared._replace(collection_exhausted_through=claim.due_through)
        await _save_collection(conn, exhausted)
        await replan_collections(conn, exhausted)
    return status


def payment_audit(payment: payments.Payment, status: payments.PaymentStatus) -> audit.AuditEntry:
    """The audit record of a collected (or failed) payment: a money movement."""
    return audit.AuditEntry(
        actor="system",
        action=f"payment.{status.value}",
        entity_id=payment.id,
        data={
            "plan_id": payment.plan_id,
            "kind": payment.kind.value,
            "amount": payment.amount,
            "currency": payment.currency,
        },
    )


async def _settle(
    conn: asyncpg.Connection,
    record: PlanRecord,
    payment: payments.Payment,
    settlement: payments.Settlement,
    now: datetime,
    next_attempt_at: datetime | None = None,
) -> payments.PaymentStatus:
    """Record the gateway's answer, and audit it once it is final."""
    status = await payments.settle(
        conn,
        payment,
        settlement,
        at=now,
        merchant_id=record.merchant_id,
        next_attempt_at=next_attempt_at,
    )
    if status is not payments.PaymentStatus.PROCESSING:
        await audit.record_many(conn, [payment_audit(payment, status)], at=now)
    return status


async def apply_collected(
    conn: asyncpg.Connection,
    rt: Runtime,
    record: PlanRecord,
    payment: payments.Payment,
    now: datetime,
    *,
    kind: Literal["installment", "prepayment"],
    as_of: date | None = None,
) -> None:
    """Apply a succeeded charge to the plan and book it; pay back what the plan didn't owe.
    `as_of`: the day a prepayment was quoted (see `apply_payment`)."""
    if record.status not in OPEN_STATUSES:
        applied_principal = 0
        unapplied = payment.amount  # the plan closed meanwhile (refund, void): pay it back
    else:
        application = await apply_payment(
            conn, record.id, payment.amount, at=now, kind=kind, as_of=as_of
        )
        applied_principal = application.principal
        unapplied = application.unapplied
        if application.amount - unapplied:
            await book(
                conn,
                record,
                "payment.received",
                ledger.consumer_payment(
                    principal=application.principal,
                    interest=application.interest,
                    fees=application.fees,
                ),
                now,
                reference_id=payment.id,
            )
        await _release(rt, conn, record, applied_principal)
    if unapplied:
        # Money the plan does not owe (it was paid or refunded meanwhile) goes straight back
        # to the card; in and out of gateway clearing, it leaves no balance to book.
        await payments.open_refund(
            conn,
            consumer_id=record.consumer_id,
            plan_id=record.id,
            checkout_id=None,
            amount=unapplied,
            currency=record.currency,
            at=now,
            merchant_id=record.merchant_id,
        )


async def _release(rt: Runtime, conn: asyncpg.Connection, record: PlanRecord, amount: int) -> None:
    hook = rt.hooks.get("release_exposure")
    if hook is not None and amount:
        await hook(conn, record.consumer_id, amount)


async def charge(rt: Runtime, claim: Claim) -> payments.Settlement | None:
    try:
        return await payments.run_charge(
            rt.providers.gateway,
            claim.payment,
            rt.clock,
            attempt=claim.attempt,
            breaker=payments.breaker(rt),
        )
    except payments.GatewayUnavailable:
        return None


# --------------------------------------------------------------------------- consumers


async def _consumer_plan(conn: asyncpg.Connection, plan_id: str, consumer_id: str) -> PlanRecord:
    record = await repository.lock_plan(conn, plan_id) if plan_id.startswith("pln_") else None
    if record is None or record.consumer_id != consumer_id:
        raise not_found("plan")
    return record


async def begin_consumer_payment(
    conn: asyncpg.Connection,
    *,
    plan_id: str,
    consumer_id: str,
    kind: Literal["next_installment", "payoff"],
    payment_method_id: str,
    at: datetime,
) -> Claim:
    """Record a payment the consumer makes now: the next installment, or the payoff."""
    record = await _consumer_plan(conn, plan_id, consumer_id)
    if record.status not in OPEN_STATUSES:
        raise conflict("nothing_due", "This plan is closed: nothing is due.")
    current = (
        await payments.get_payment(conn, record.collection_payment_id)
        if record.collection_payment_id
        else None
    )
    if current is not None and current.status is payments.PaymentStatus.PROCESSING:
        raise conflict("payment_in_progress", "A payment of this plan is being processed.")
    token = await identity.payment_method_token(conn, consumer_id, payment_method_id)
    if token is None:
        raise unprocessable(
            "invalid_payment_method", "No such payment method.", "payment_method_id"
        )
    today = at.date()
    if kind == "payoff":
        amount = payoff_amount(record.installments, today)
        due_seqs: list[int] = [
            i.seq for i in record.installments if i.is_open and i.due_date <= today
        ]
    else:
        next_open = next(
            (i for i in record.installments if i.is_open and i.unpaid_amount > 0), None
        )
        amount = next_open.unpaid_amount if next_open is not None else 0
        due_seqs = [next_open.seq] if next_open is not None else []
    if amount <= 0:
        raise conflict("nothing_due", "Nothing is due on this plan.")
    record = await accrue_due_interest(conn, record, at, also=due_seqs)
    if current is not None:  # a retry was waiting: this payment replaces it
        await payments.cancel(conn, current.id, at=at)
    payment = await payments.open_charge(
        conn,
        kind=payments.PaymentKind.PREPAYMENT
        if kind == "payoff"
        else payments.PaymentKind.INSTALLMENT,
        consumer_id=consumer_id,
        amount=amount,
        currency=record.currency,
        payment_method_id=payment_method_id,
        gateway_token=token,
        plan_id=record.id,
        at=at,
    )
    # The plan holds the payment while it is in flight: autopay leaves the plan alone, and
    # if this process dies the collection run re-sends this very attempt.
    await _save_collection(
        conn,
        record._replace(
            collection_payment_id=payment.id,
            collection_attempt=1,
            collection_due_at=at + LEASE,
        ),
    )
    return Claim(record.id, payment, 1, today, autopay=False, resume_at=record.collection_due_at)


async def finish_consumer_payment(
    conn: asyncpg.Connection,
    rt: Runtime,
    claim: Claim,
    settlement: payments.Settlement | None,
    at: datetime,
) -> payments.Payment:
    await settle_claim(conn, rt, claim, settlement, at)
    payment = await payments.get_payment(conn, claim.payment.id)
    assert payment is not None
    return payment


async def change_payment_method(
    conn: asyncpg.Connection,
    *,
    plan_id: str,
    consumer_id: str,
    payment_method_id: str,
    at: datetime,
) -> PlanRecord:
    """Set the plan's autopay card; anything overdue is attempted at once (the caller runs
    the collection right after this commits)."""
    record = await _consumer_plan(conn, plan_id, consumer_id)
    if record.status not in OPEN_STATUSES:
        raise conflict("plan_closed", "This plan is closed.")
    token = await identity.payment_method_token(conn, consumer_id, payment_method_id)
    if token is None:
        raise unprocessable(
            "invalid_payment_method", "No such payment method.", "payment_method_id"
        )
    await repository.set_payment_method(conn, record.id, payment_method_id)
    current = (
        await payments.get_payment(conn, record.collection_payment_id)
        if record.collection_payment_id
        else None
    )
    in_flight = current is not None and current.status is payments.PaymentStatus.PROCESSING
    if current is not None and not in_flight:
        await payments.cancel(conn, current.id, at=at)
    updated = record._replace(
        payment_method_id=payment_method_id,
        autopay_blocked=False,
        collection_exhausted_through=None,
        collection_payment_id=record.collection_payment_id if in_flight else None,
        collection_attempt=record.collection_attempt if in_flight else 0,
    )
    await _save_collection(conn, updated)
    return await replan_collections(conn, updated)


async def collect_plan_now(rt: Runtime, plan_id: str, now: datetime) -> None:
    """Run the autopay collection of one plan right away (after a new payment method)."""
    async with rt.db.transaction() as conn:
        record = await repository.lock_plan(conn, plan_id)
        if record is None:
            raise PlanNotFound(plan_id)
        if (
            record.status not in OPEN_STATUSES
            or record.collection_due_at is None
            or record.collection_due_at > now
        ):
            return
        claim = await prepare_claim(conn, rt, record, now)
    if claim is None:
        return
    settlement = await charge(rt, claim)
    async with rt.db.transaction() as conn:
        await settle_claim(conn, rt, claim, settlement, now)


# --------------------------------------------------------------------------- late fees


async def charge_in_flight(conn: asyncpg.Connection, record: PlanRecord) -> bool:
    """Whether a charge of the plan (autopay or the consumer's own payment) has been sent
    and not yet settled. Late fees and charge-offs wait for it: the charge was made before
    them and may pay what they are for. (The scheduler retries them once it has settled, or
    once its lease runs out and the collection run resumes it.)"""
    if record.collection_payment_id is None:
        return False
    current = await payments.get_payment(conn, record.collection_payment_id, with_attempts=False)
    return current is not None and current.status is payments.PaymentStatus.PROCESSING


@dataclass
class AssessLateFees:
    """`installments.assess_late_fees`: an installment unpaid `grace` days after its due
    date is late, gets one late fee (capped at 25% of the plan's principal), and its plan
    becomes delinquent."""

    grace_days: int = 10
    fee: int = 700
    cap_bps: int = 2500
    name: str = "installments.assess_late_fees"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            due = await repository.earliest_unpaid_scheduled_due(conn)
        return midnight(due + timedelta(days=self.grace_days)) if due is not None else None

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        cutoff = now.date() - timedelta(days=self.grace_days)
        assessed = 0
        async with db.transaction() as conn:
            plan_ids = await repository.claim_plans_with_unpaid_due(conn, cutoff, limit)
            for plan_id in plan_ids:
                record = await repository.lock_plan(conn, plan_id)
                assert record is not None
                if await charge_in_flight(conn, record):
                    continue  # it may pay the installment: assessed once it has settled
                assessed += 1
                record = await accrue_due_interest(conn, record, now)
                assessment = assess_late_fees(
                    record.installments,
                    now.date(),
                    record.original_principal,
                    record.late_fees_total,
                    grace_days=self.grace_days,
                    fee=self.fee,
                    cap_bps=self.cap_bps,
                )
                status = plan_status_for(assessment.installments, record.status)
                await save_assessment(conn, record, assessment, status, now)
        return assessed


@dataclass
class ChargeOff:
    """`installments.charge_off`: a plan 120 days past due is charged off; what the consumer
    still owes is written off the receivables."""

    rt: Runtime
    name: str = "installments.charge_off"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repository.earliest(conn, "charge_off_at", [PlanStatus.DELINQUENT.value])

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        charged_off = 0
        async with db.transaction() as conn:
            plan_ids = await repository.claim_plans(
                conn, "charge_off_at", now, limit, [PlanStatus.DELINQUENT.value]
            )
            for plan_id in plan_ids:
                record = await repository.lock_plan(conn, plan_id)
                assert record is not None
                if await charge_in_flight(conn, record):
                    continue  # it may bring the plan back: decided once it has settled
                charged_off += 1
                record = await accrue_due_interest(conn, record, now)
                if record.collection_payment_id:
                    current = await payments.get_payment(conn, record.collection_payment_id)
                    if (
                        current is not None
                        and current.status is payments.PaymentStatus.RETRY_SCHEDULED
                    ):
                        await payments.cancel(conn, current.id, at=now)
                principal = await charge_off(conn, record, now)
                await _release(self.rt, conn, record, principal)
        return charged_off
