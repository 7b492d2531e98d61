"""Use cases of the installments context.

Each function works in the caller's transaction (the checkout or payments context owns
the boundary, so the plan change commits with its outbox events, ledger entry and audit
record). Functions that change a plan first lock its row, so changes of one plan
serialize; the arithmetic is all in ``domain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import TypedDict, Unpack

import asyncpg

from bnpl import ledger, payments
from bnpl.installments import events, repository
from bnpl.installments.domain import (
    Installment,
    InstallmentStatus,
    LateFeeAssessment,
    PaymentAllocation,
    PlanKind,
    PlanStatus,
    allocate_payment,
    allocate_refund,
    build_schedule,
    cancel_installments,
    charge_off_date,
    next_collection_date,
    outstanding_balance,
    pay_off,
    payoff_amount,
    plan_principal,
    plan_status_for,
    start_installments,
    status_after_refund,
)
from bnpl.installments.models import (
    Cancellation,
    InstallmentPayment,
    PaymentApplication,
    PaymentKind,
    PayoffQuote,
    Plan,
    PlanClosed,
    PlanExists,
    PlanInstallment,
    PlanNotFound,
    RefundApplication,
    RefundExceedsPlan,
)
from bnpl.installments.repository import PlanRecord
from bnpl.installments.schemas import plan_json
from bnpl.kit.ids import has_prefix, new_id
from bnpl.kit.money import SUPPORTED_CURRENCIES

OPEN_STATUSES = (PlanStatus.ACTIVE, PlanStatus.DELINQUENT)
_PAYMENT_KINDS = ("installment", "down_payment", "prepayment")
# A void or expiry is possible until the plan is settled some other way; a paid-off plan
# (the consumer prepaid before capture) can still be canceled and paid back.
_CANCELABLE = (PlanStatus.ACTIVE, PlanStatus.DELINQUENT, PlanStatus.PAID_OFF)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("business time must carry a time zone")


def _require_positive(amount: int, what: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"{what} must be a positive integer of minor units, got {amount!r}")


def to_plan(record: PlanRecord) -> Plan:
    """The public view of a stored plan."""
    state = record.installments
    return Plan(
        id=record.id,
        status=record.status,
        plan=record.kind,
        checkout_id=record.checkout_id,
        consumer_id=record.consumer_id,
        merchant_id=record.merchant_id,
        currency=record.currency,
        principal=plan_principal(state),
        original_principal=record.original_principal,
        apr_bps=record.apr_bps,
        outstanding_balance=outstanding_balance(state),
        late_fees_total=record.late_fees_total,
        payment_method_id=record.payment_method_id,
        installments=tuple(
            PlanInstallment(
                seq=i.seq,
                due_date=i.due_date,
                principal=i.principal,
                interest=i.interest,
                fees=i.fees,
                amount_due=i.amount_due,
                amount_paid=i.amount_paid,
                status=i.status,
            )
            for i in state
        ),
        created_at=record.created_at,
    )


async def _locked(conn: asyncpg.Connection, plan_id: str) -> PlanRecord:
    record = await repository.lock_plan(conn, plan_id) if has_prefix(plan_id, "pln") else None
    if record is None:
        raise PlanNotFound(plan_id)
    return record


async def _save(
    conn: asyncpg.Connection,
    record: PlanRecord,
    installments: Sequence[Installment],
    status: PlanStatus,
    at: datetime,
    *,
    refunded_amount: int | None = None,
) -> tuple[PlanRecord, Plan]:
    """Persist the plan's new state (only the installments that changed), with the
    collection state `record` carries.

    It also books what changed on the receivable side (late fees added, fees and accrued
    interest waived) and re-plans the plan's collections and charge-off date.
    """
    changed = [
        new for old, new in zip(record.installments, installments, strict=True) if old != new
    ]
    principal = plan_principal(installments)
    refunded = record.refunded_amount if refunded_amount is None else refunded_amount
    if not changed and status is record.status and refunded == record.refunded_amount:
        return record, to_plan(record)  # e.g. a payment on a settled plan: nothing to write
    await _book_receivable_changes(conn, record, installments, at)
    saved = record._replace(
        principal=principal,
        status=status,
        refunded_amount=refunded,
        version=record.version + 1,
        installments=tuple(installments),
    )
    await repository.save_plans(conn, [(saved, changed)], at=at)
    if status.is_closed:
        saved = await _cancel_waiting_retry(conn, saved, at)
    saved = await replan_collections(conn, saved)
    return saved, to_plan(saved)


async def _cancel_waiting_retry(
    conn: asyncpg.Connection, record: PlanRecord, at: datetime
) -> PlanRecord:
    """A closed plan (refunded, canceled, paid off, charged off) has nothing left to collect:
    a soft-declined collection waiting for its retry day is canceled, not left pending."""
    if record.collection_payment_id is None:
        return record
    waiting = await payments.get_payment(conn, record.collection_payment_id)
    if waiting is None or waiting.status is not payments.PaymentStatus.RETRY_SCHEDULED:
        return record  # one in flight settles by itself (what the plan no longer owes goes back)
    await payments.cancel(conn, waiting.id, at=at)
    cleared = record._replace(
        collection_payment_id=None, collection_attempt=0, collection_due_at=None
    )
    await repository.save_collection_state(
        conn,
        record.id,
        collection_due_at=None,
        collection_payment_id=None,
        collection_attempt=0,
        collection_exhausted_through=record.collection_exhausted_through,
        autopay_blocked=record.autopay_blocked,
        charge_off_at=record.charge_off_at,
    )
    return cleared


def receivable_changes(
    record: PlanRecord, installments: Sequence[Installment]
) -> list[tuple[str, list[ledger.Line]]]:
    """What a change of the plan's installments moves on the receivable side, as ledger
    `(kind, lines)`: fees only grow by a late fee and only shrink by a waiver; an
    installment's interest only shrinks by a waiver (what was booked as receivable moves).
    A charged-off plan's receivables were written off: what a refund waives there turns
    that write-off into a waiver."""
    fees_added = fees_waived = interest_waived = 0
    for old, new in zip(record.installments, installments, strict=True):
        fees_added += max(0, new.fees - old.fees)
        fees_waived += max(0, old.fees - new.fees)
        if old.seq in record.accrued:
            interest_waived += max(0, old.interest - new.interest)
    changes = []
    if fees_added:
        changes.append(("plan.late_fee", ledger.late_fee(fees_added)))
    if fees_waived or interest_waived:
        written_off = record.status is PlanStatus.CHARGED_OFF
        recipe = ledger.written_off_waiver if written_off else ledger.waiver
        changes.append(("plan.waiver", recipe(interest=interest_waived, fees=fees_waived)))
    return changes


async def _book_receivable_changes(
    conn: asyncpg.Connection,
    record: PlanRecord,
    installments: Sequence[Installment],
    at: datetime,
) -> None:
    for kind, lines in receivable_changes(record, installments):
        await book(conn, record, kind, lines, at)


def posting(
    record: PlanRecord, kind: str, lines: Sequence[ledger.Line], reference_id: str | None = None
) -> ledger.Posting:
    """One of the plan's ledger entries, for `ledger.post_many`."""
    return ledger.Posting(
        kind=kind,
        reference_id=reference_id or record.id,
        currency=record.currency,
        lines=lines,
        consumer_id=record.consumer_id,
        merchant_id=record.merchant_id,
    )


async def book(
    conn: asyncpg.Connection,
    record: PlanRecord,
    kind: str,
    lines: Sequence[ledger.Line],
    at: datetime,
    reference_id: str | None = None,
) -> None:
    """Post one of the plan's ledger entries."""
    await ledger.post(
        conn,
        kind=kind,
        reference_id=reference_id or record.id,
        currency=record.currency,
        lines=lines,
        at=at,
        consumer_id=record.consumer_id,
        merchant_id=record.merchant_id,
    )


def planned_collections(record: PlanRecord) -> PlanRecord:
    """The record with when autopay next charges the plan and when it would be charged off.

    A collection in progress keeps its own schedule (the collection run owns it); a closed
    plan, or one whose autopay a hard decline blocked, has no collection planned.
    """
    open_plan = record.status in OPEN_STATUSES
    due_at = record.collection_due_at
    if record.collection_payment_id is None:
        due_at = None
        if open_plan and not record.autopay_blocked:
            due = next_collection_date(record.installments, record.collection_exhausted_through)
            due_at = midnight(due) if due is not None else None
    charge_off = None
    if record.status is PlanStatus.DELINQUENT:
        day = charge_off_date(record.installments)
        charge_off = midnight(day) if day is not None else None
    if not open_plan:
        due_at = None
    if (due_at, charge_off) == (record.collection_due_at, record.charge_off_at):
        return record
    return record._replace(collection_due_at=due_at, charge_off_at=charge_off)


async def replan_collections(conn: asyncpg.Connection, record: PlanRecord) -> PlanRecord:
    """`planned_collections`, saved if it changed."""
    updated = planned_collections(record)
    if updated is record:
        return record
    await repository.save_collection_state(
        conn,
        record.id,
        collection_due_at=updated.collection_due_at,
        collection_payment_id=updated.collection_payment_id,
        collection_attempt=updated.collection_attempt,
        collection_exhausted_through=updated.collection_exhausted_through,
        autopay_blocked=updated.autopay_blocked,
        charge_off_at=updated.charge_off_at,
    )
    return updated


def midnight(day: date) -> datetime:
    """The start of a calendar day (due dates are UTC dates)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


async def _status_event(
    conn: asyncpg.Connection, before: PlanStatus, plan: Plan, at: datetime
) -> None:
    if plan.status is not before and plan.status in events.STATUS_EVENTS:
        await events.plan_event(conn, events.STATUS_EVENTS[plan.status], plan, at)


# --------------------------------------------------------------------------- creation


class PlanTerms(TypedDict):
    """The terms of a new plan (`create_plan`, `create_plan_paid_down`)."""

    checkout_id: str
    consumer_id: str
    merchant_id: str
    kind: PlanKind
    principal: int
    currency: str
    apr_bps: int
    authorization_date: date
    payment_method_id: str
    at: datetime


async def create_plan(conn: asyncpg.Connection, **terms: Unpack[PlanTerms]) -> Plan:
    """Create the plan of an authorized checkout, in the caller's transaction.

    The schedule comes from ``domain.build_schedule`` (``apr_bps`` is ignored, and shown
    as 0, for ``pay_in_4``); the plan is ``active`` with every installment
    ``scheduled``. Plan and installments are written in one statement; ``plan.created``
    (data: the plan's public JSON) is emitted. Nothing is charged here: the caller
    applies a successful down payment with ``apply_payment(kind="down_payment")``, or
    creates the plan with ``create_plan_paid_down``.

    Raises ``PlanExists`` if the checkout already has a plan (the caller's transaction
    stays usable), ``ValueError`` for bad terms (non-positive principal, negative APR,
    unsupported currency, naive ``at``).
    """
    return to_plan(await _create(conn, **terms))


async def _create(
    conn: asyncpg.Connection,
    *,
    checkout_id: str,
    consumer_id: str,
    merchant_id: str,
    kind: PlanKind,
    principal: int,
    currency: str,
    apr_bps: int,
    authorization_date: date,
    payment_method_id: str,
    at: datetime,
) -> PlanRecord:
    _require_aware(at)
    kind = PlanKind(kind)
    if currency not in SUPPORTED_CURRENCIES:
        raise ValueError(f"unsupported currency {currency!r}")
    # pay_in_4 is interest-free whatever the merchant's APR; the plan shows 0.
    apr = apr_bps if kind.charges_interest else 0
    schedule = build_schedule(kind, principal, apr, authorization_date)
    plan_id = new_id("pln")
    inserted = await repository.insert_plan(
        conn,
        plan_id=plan_id,
        checkout_id=checkout_id,
        consumer_id=consumer_id,
        merchant_id=merchant_id,
        kind=kind,
        currency=currency,
        principal=principal,
        apr_bps=apr,
        status=PlanStatus.ACTIVE,
        payment_method_id=payment_method_id,
        authorization_date=authorization_date,
        at=at,
        schedule=schedule,
    )
    if not inserted:
        raise PlanExists(checkout_id)
    record = PlanRecord(
        id=plan_id,
        consumer_id=consumer_id,
        merchant_id=merchant_id,
        checkout_id=checkout_id,
        kind=kind,
        currency=currency,
        principal=principal,
        original_principal=principal,
        refunded_amount=0,
        apr_bps=apr,
        status=PlanStatus.ACTIVE,
        payment_method_id=payment_method_id,
        late_fees_total=0,
        authorization_date=authorization_date,
        created_at=at,
        version=1,
        installments=start_installments(schedule),
    )
    if not kind.has_down_payment:
        # (A pay_in_4's collections are planned when its down payment is applied, next.)
        record = await replan_collections(conn, record)
    await events.plan_event(conn, events.PLAN_CREATED, to_plan(record), at)
    return record


async def create_plan_paid_down(
    conn: asyncpg.Connection, *, down_payment: int, **terms: Unpack[PlanTerms]
) -> PaymentApplication:
    """`create_plan` (same `terms`), then `apply_payment` of the `down_payment` already
    charged, on the plan as this transaction just wrote it (no read back, no lock to take):
    the application, whose `plan` is the new plan."""
    record = await _create(conn, **terms)
    return await _apply(conn, record, down_payment, at=terms["at"], kind="down_payment", as_of=None)


# --------------------------------------------------------------------------- payments


def _allocate(record: PlanRecord, amount: int, kind: PaymentKind, as_of: date) -> PaymentAllocation:
    if kind == "prepayment":
        payoff = payoff_amount(record.installments, as_of)
        if 0 < payoff <= amount:
            settled = pay_off(record.installments, as_of)
            return replace(settled, unapplied=amount - payoff)
    return allocate_payment(record.installments, amount)


async def apply_payment(
    conn: asyncpg.Connection,
    plan_id: str,
    amount: int,
    *,
    at: datetime,
    kind: PaymentKind,
    as_of: date | None = None,
) -> PaymentApplication:
    """Apply a payment the consumer made (the charge already succeeded) to the plan.

    ``installment`` and ``down_payment`` go to the oldest unpaid installment first, and
    within one to fees, then interest, then principal. ``prepayment`` of at least the
    payoff amount (``payoff_quote``) settles the plan, waiving the interest of
    installments not yet due; a smaller prepayment is applied like ``installment``. ``as_of``
    is the day the prepayment was quoted and charged (default: ``at``'s day): a charge that
    settles later, after a due date passed, is still the payoff it was when it was made.

    Installments settled become ``paid`` (``installment.paid`` each); a plan with nothing
    left to pay becomes ``paid_off`` (``plan.paid_off``); a delinquent plan with no late
    installment left becomes ``active`` again (``plan.reactivated``). What the plan does
    not owe is returned as ``unapplied`` (for the caller to pay back), never applied.

    Raises ``PlanNotFound``; ``ValueError`` for a non-positive amount, an unknown kind,
    or a down payment on a plan without one.
    """
    _require_aware(at)
    _require_positive(amount, "payment amount")
    record = await _locked(conn, plan_id)
    return await _apply(conn, record, amount, at=at, kind=kind, as_of=as_of)


async def _apply(
    conn: asyncpg.Connection,
    record: PlanRecord,
    amount: int,
    *,
    at: datetime,
    kind: PaymentKind,
    as_of: date | None,
) -> PaymentApplication:
    """`apply_payment` on the plan as `record` holds it (locked, or written by this
    transaction)."""
    _require_positive(amount, "payment amount")
    if kind not in _PAYMENT_KINDS:
        raise ValueError(f"unknown payment kind {kind!r}")
    if kind == "down_payment" and not record.kind.has_down_payment:
        raise ValueError(f"a {record.kind} plan has no down payment")
    allocation = _allocate(record, amount, kind, as_of or at.date())
    status = plan_status_for(allocation.installments, record.status)
    _, plan = await _save(conn, record, allocation.installments, status, at)

    paid = tuple(
        new.seq
        for old, new in zip(record.installments, allocation.installments, strict=True)
        if old.is_open and new.status is InstallmentStatus.PAID
    )
    by_seq = {i.seq: i for i in plan.installments}
    for seq in paid:
        await events.installment_paid(conn, plan, by_seq[seq], at)
    await _status_event(conn, record.status, plan, at)

    parts = tuple(
        InstallmentPayment(seq=p.seq, principal=p.principal, interest=p.interest, fees=p.fees)
        for p in allocation.parts
    )
    return PaymentApplication(
        plan_id=plan.id,
        kind=kind,
        amount=amount,
        currency=plan.currency,
        principal=sum(p.principal for p in parts),
        interest=sum(p.interest for p in parts),
        fees=sum(p.fees for p in parts),
        unapplied=allocation.unapplied,
        waived_interest=allocation.waived_interest,
        parts=parts,
        paid_installments=paid,
        plan=plan,
    )


# --------------------------------------------------------------------------- refunds


async def apply_refund(
    conn: asyncpg.Connection, plan_id: str, amount: int, *, at: datetime
) -> RefundApplication:
    """Allocate a refund (or the released part of a partial capture) of ``amount``.

    Per ``domain.allocate_refund``: unpaid principal is cut from the last installment
    backwards; an installment cut to zero is ``canceled`` (or ``paid``, if it was partly
    paid) with its unpaid interest and fees waived; what exceeds the unpaid principal is
    ``refunded_to_consumer``. The plan's principal drops by ``applied_to_plan``.

    Status: once refunds reach the plan's original principal the plan is ``refunded``
    (also from ``paid_off``); a partial refund that leaves only paid installments makes
    it ``paid_off``. Emits ``plan.refund_applied``, then ``plan.refunded`` or
    ``plan.paid_off`` on a status change.

    Raises ``PlanNotFound``; ``PlanClosed`` for a canceled plan; ``RefundExceedsPlan``
    when all refunds together would exceed the original principal (checked under the
    plan's row lock, so concurrent refunds never over-refund).
    """
    _require_aware(at)
    _require_positive(amount, "refund amount")
    record = await _locked(conn, plan_id)
    if record.status is PlanStatus.CANCELED:
        raise PlanClosed(record.id, record.status)
    refundable = record.original_principal - record.refunded_amount
    if amount > refundable:
        raise RefundExceedsPlan(record.id, amount, refundable)
    allocation = allocate_refund(record.installments, amount)
    refunded = record.refunded_amount + amount
    status = status_after_refund(
        allocation.installments,
        record.status,
        fully_refunded=refunded == record.original_principal,
    )
    _, plan = await _save(
        conn, record, allocation.installments, status, at, refunded_amount=refunded
    )
    application = RefundApplication(
        plan_id=plan.id,
        amount=amount,
        currency=plan.currency,
        applied_to_plan=allocation.applied_to_plan,
        refunded_to_consumer=allocation.refunded_to_consumer,
        waived_interest=allocation.waived_interest,
        waived_fees=allocation.waived_fees,
        canceled_installments=allocation.canceled,
        plan=plan,
    )
    await events.emit(
        conn,
        events.PLAN_REFUND_APPLIED,
        plan,
        {
            "plan_id": plan.id,
            "amount": amount,
            "currency": plan.currency,
            "applied_to_plan": application.applied_to_plan,
            "refunded_to_consumer": application.refunded_to_consumer,
            "waived_interest": application.waived_interest,
            "waived_fees": application.waived_fees,
            "canceled_installments": list(application.canceled_installments),
            "plan": plan_json(plan),
        },
        at,
    )
    await _status_event(conn, record.status, plan, at)
    return application


# --------------------------------------------------------------------------- cancellation


async def cancel_plan(conn: asyncpg.Connection, plan_id: str, *, at: datetime) -> Cancellation:
    """Cancel the plan (a void, or its authorization expired).

    The plan becomes ``canceled`` and every open installment ``canceled`` (unpaid amounts
    waived). Returns ``paid_by_consumer`` (everything paid on the plan, which the caller
    pays back) and ``unpaid_principal_released``. Emits ``plan.canceled``.

    Raises ``PlanNotFound``; ``PlanClosed`` unless the plan is ``active``, ``delinquent``
    or ``paid_off``.
    """
    _require_aware(at)
    record = await _locked(conn, plan_id)
    if record.status not in _CANCELABLE:
        raise PlanClosed(record.id, record.status)
    allocation = cancel_installments(record.installments)
    _, plan = await _save(conn, record, allocation.installments, PlanStatus.CANCELED, at)
    await events.plan_event(
        conn,
        events.PLAN_CANCELED,
        plan,
        at,
        {"paid_by_consumer": allocation.paid_by_consumer},
    )
    return Cancellation(
        plan_id=plan.id,
        currency=plan.currency,
        paid_by_consumer=allocation.paid_by_consumer,
        paid_principal=allocation.paid_principal,
        paid_interest=allocation.paid_interest,
        paid_fees=allocation.paid_fees,
        unpaid_principal_released=allocation.released_principal,
        waived_interest=allocation.waived_interest,
        waived_fees=allocation.waived_fees,
        canceled_installments=allocation.canceled,
        plan=plan,
    )


# --------------------------------------------------------------------------- reads


async def get_plan(conn: asyncpg.Connection, plan_id: str) -> Plan | None:
    """The plan, or ``None`` (also for a malformed id). No authorization here."""
    if not has_prefix(plan_id, "pln"):
        return None
    record = await repository.fetch_plan(conn, plan_id)
    return to_plan(record) if record is not None else None


async def plans_of_consumer(
    conn: asyncpg.Connection, consumer_id: str, limit: int, starting_after: str | None = None
) -> list[Plan]:
    """A consumer's plans, newest first, the page after the plan id ``starting_after``.

    Ask for ``limit + 1`` to learn whether there is a next page.
    """
    records = await repository.fetch_plans_of_consumer(conn, consumer_id, limit, starting_after)
    return [to_plan(r) for r in records]


async def has_delinquent_plan(conn: asyncpg.Connection, consumer_id: str) -> bool:
    """Whether the consumer has a plan that is ``delinquent`` or ``charged_off``."""
    return await repository.has_plan_in_status(
        conn, consumer_id, (PlanStatus.DELINQUENT, PlanStatus.CHARGED_OFF)
    )


async def unpaid_principal_total(conn: asyncpg.Connection, currency: str) -> int:
    """Unpaid principal of every open (``active`` or ``delinquent``) plan in ``currency``:
    what the consumer-receivable ledger balance must equal."""
    return await repository.unpaid_principal_total(conn, currency, OPEN_STATUSES)


async def payoff_quote(conn: asyncpg.Connection, plan_id: str, today: date) -> PayoffQuote | None:
    """What settles the plan on ``today`` (``None`` if there is no such plan).

    Unpaid principal and fees plus the unpaid interest of installments already due;
    ``waived_interest`` is the future interest the payoff forgives.
    """
    if not has_prefix(plan_id, "pln"):
        return None
    record = await repository.fetch_plan(conn, plan_id)
    if record is None:
        return None
    waived = sum(i.unpaid_interest for i in record.installments if i.is_open and i.due_date > today)
    return PayoffQuote(
        plan_id=record.id,
        currency=record.currency,
        amount=payoff_amount(record.installments, today),
        waived_interest=waived,
        as_of=today,
    )


# --------------------------------------------------------------------------- late fees


async def save_assessment(
    conn: asyncpg.Connection,
    record: PlanRecord,
    assessment: LateFeeAssessment,
    status: PlanStatus,
    at: datetime,
) -> Plan:
    """Persist a late-fee assessment: installments late, fees added (and booked), the plan
    delinquent; emits `installment.late` for each and `plan.delinquent` on the change."""
    if assessment.fees_charged:  # saved with the plan, below
        record = record._replace(late_fees_total=record.late_fees_total + assessment.fees_charged)
    before = {i.seq: i for i in record.installments}
    _, plan = await _save(conn, record, assessment.installments, status, at)
    by_seq = {i.seq: i for i in plan.installments}
    for seq in assessment.newly_late:
        new = next(i for i in assessment.installments if i.seq == seq)
        await events.installment_late(conn, plan, by_seq[seq], new.fees - before[seq].fees, at)
    await _status_event(conn, record.status, plan, at)
    return plan


async def charge_off(conn: asyncpg.Connection, record: PlanRecord, at: datetime) -> int:
    """Charge the plan off: what the consumer still owes is written off the receivables.

    Returns the principal written off (no longer counted against the consumer's limit).
    """
    principal = sum(i.unpaid_principal for i in record.installments if i.is_open)
    interest = sum(
        i.unpaid_interest for i in record.installments if i.is_open and i.seq in record.accrued
    )
    fees = sum(i.unpaid_fees for i in record.installments if i.is_open)
    if principal or interest or fees:
        await book(
            conn,
            record,
            "plan.charged_off",
            ledger.charge_off(principal=principal, interest=interest, fees=fees),
            at,
        )
    # Nothing is collected any more (saved with the plan's new status).
    cleared = record._replace(
        collection_payment_id=None,
        collection_attempt=0,
        collection_due_at=None,
        charge_off_at=None,
    )
    _, plan = await _save(conn, cleared, record.installments, PlanStatus.CHARGED_OFF, at)
    await _status_event(conn, record.status, plan, at)
    return principal


@dataclass(frozen=True, slots=True)
class Portfolio:
    """The plan book now, in one currency: plans active and delinquent, and the receivables
    (unpaid principal, accrued unpaid interest, unpaid late fees) of open plans."""

    active_plans: int
    delinquent_plans: int
    outstanding_receivables: int


async def portfolio(
    conn: asyncpg.Connection, currency: str, merchant_id: str | None = None
) -> Portfolio:
    row = await repository.portfolio(conn, currency, merchant_id)
    return Portfolio(int(row["active"]), int(row["delinquent"]), int(row["receivables"]))
