"""`installments.collect`: autopay, set-based, so one run settles thousands of installments.

The rules are those of `collections` (one payment per amount due, committed before the
gateway is called, settled in a later transaction; see its docstring); this module does them
for a chunk of plans at once in a fixed handful of statements. Only the common cases take the
batch path: a collection that is started or retried (claiming), and a charge that succeeded
and that the plan owes in full (settling). Everything else (a resumed attempt, a removed
card, a decline, no answer, a plan closed meanwhile, money the plan does not owe) goes
through `collections.prepare_claim` / `collections.settle_claim`, plan by plan, in the same
transaction. Both paths compose the same pure rules (`domain`, `service.planned_collections`,
`service.receivable_changes`), so they end in the same state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from bnpl import audit, identity, ledger, payments
from bnpl.installments import events, repository
from bnpl.installments.collections import (
    Claim,
    charge,
    due_through,
    interest_falling_due,
    payment_audit,
    prepare_claim,
    settle_claim,
)
from bnpl.installments.domain import (
    Installment,
    InstallmentStatus,
    allocate_payment,
    collectible_due,
    plan_principal,
    plan_status_for,
)
from bnpl.installments.repository import PlanRecord
from bnpl.installments.service import (
    OPEN_STATUSES,
    planned_collections,
    posting,
    receivable_changes,
    to_plan,
)
from bnpl.kit.db import Database
from bnpl.messaging import NewEvent, publish_many
from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

CLAIM_CHUNK = 200  # plans claimed (and their charges recorded) per transaction
SETTLE_CHUNK = 200  # gateway answers settled per transaction, at most
SETTLERS = 2  # transactions settling at once
_OPEN = [s.value for s in OPEN_STATUSES]

Outcome = tuple[Claim, payments.Settlement | None]


# --------------------------------------------------------------------------- claiming


async def claim_batch(
    db: Database, rt: Runtime, now: datetime, limit: int
) -> tuple[int, list[Claim]]:
    """Claim up to `limit` plans whose collection is due and record their charges, in one
    transaction; how many plans were claimed, and the charges to send."""
    lease = timedelta(seconds=rt.settings.collection_lease_s)
    today = now.date()
    async with db.transaction() as conn:
        records = await repository.claim_due_plans(conn, "collection_due_at", now, limit, _OPEN)
        if not records:
            return 0, []
        # The interest falling due is booked when the charge is settled, whatever its answer
        # (`_collect`, `settle_claim`): the claim writes only payments and collection states.
        waiting = {
            p.id: p
            for p in await payments.get_payments(
                conn, [r.collection_payment_id for r in records if r.collection_payment_id]
            )
        }
        tokens = await identity.payment_method_tokens(
            conn, [(r.consumer_id, r.payment_method_id) for r in records]
        )
        fresh: list[tuple[PlanRecord, payments.NewCharge]] = []
        retried: list[tuple[PlanRecord, payments.Payment]] = []
        canceled: list[str] = []
        others: list[PlanRecord] = []
        covers: dict[str, date] = {}  # plan -> the latest due date its charge is for
        for record in records:
            due = collectible_due(record.installments, today)
            amount = sum(i.unpaid_amount for i in due)
            covers[record.id] = due_through(due, now)
            token = tokens.get(record.payment_method_id)
            current = waiting.get(record.collection_payment_id or "")
            if (
                amount == 0
                or token is None
                or (record.collection_payment_id is not None and current is None)
                or (current is not None and current.status is payments.PaymentStatus.PROCESSING)
            ):
                others.append(record)  # nothing due, no card, or an attempt to resume
            elif (
                current is not None and current.amount == amount and current.gateway_token == token
            ):
                retried.append((record, current))
            else:
                if current is not None:
                    canceled.append(current.id)
                charge_ = payments.NewCharge(
                    kind=payments.PaymentKind.INSTALLMENT,
                    consumer_id=record.consumer_id,
                    amount=amount,
                    currency=record.currency,
                    payment_method_id=record.payment_method_id,
                    gateway_token=token,
                    plan_id=record.id,
                )
                fresh.append((record, charge_))
        await payments.cancel(conn, *canceled, at=now)
        await payments.reopen(conn, *(p.id for _, p in retried), at=now)
        opened = await payments.open_charges(conn, [c for _, c in fresh], at=now)
        claims: list[Claim] = []
        leased: list[PlanRecord] = []
        started = [(r, p, 1) for (r, _), p in zip(fresh, opened, strict=True)]
        again = [(r, p, r.collection_attempt + 1) for r, p in retried]
        for record, payment, attempt in started + again:
            lease_held = record._replace(
                collection_payment_id=payment.id,
                collection_attempt=attempt,
                collection_due_at=now + lease,
            )
            leased.append(lease_held)
            claims.append(Claim(record.id, payment, attempt, covers[record.id], record=lease_held))
        # `others` too, for their versions; `prepare_claim` then writes what it decides.
        await repository.save_collection_states(conn, leased + others)
        for record in others:
            claim = await prepare_claim(conn, rt, record, now)
            if claim is not None:
                claims.append(claim)
    return len(records), claims


# --------------------------------------------------------------------------- settling


@dataclass(frozen=True)
class _Collected:
    """A succeeded charge applied to its plan: the plan's new state and what it writes."""

    saved: PlanRecord
    changed: tuple[Installment, ...]
    item: payments.Settle
    postings: list[ledger.Posting]
    events: list[NewEvent]
    principal: int  # repaid principal, released from the consumer's exposure


def _collect(
    record: PlanRecord, payment: payments.Payment, item: payments.Settle, now: datetime
) -> _Collected | None:
    """What `settle_claim` does with a succeeded autopay charge that the open plan owes in
    full, as data (None: another case, for `settle_claim`): the interest falling due booked,
    then the payment applied."""
    record, accrued, accrual = interest_falling_due(record, now.date())
    allocation = allocate_payment(record.installments, payment.amount)
    if allocation.unapplied:
        return None  # the plan owes less than was charged: the excess goes back
    status = plan_status_for(allocation.installments, record.status)
    saved = planned_collections(
        record._replace(  # one copy: the collection is over, and what it paid is applied
            collection_payment_id=None,
            collection_attempt=0,
            principal=plan_principal(allocation.installments),
            status=status,
            version=record.version + 1,
            installments=allocation.installments,
        )
    )
    changed: list[Installment] = []
    news: list[NewEvent] = []
    for old, new in zip(record.installments, allocation.installments, strict=True):
        if old != new or old.seq in accrued:
            changed.append(new)
            if old.is_open and new.status is InstallmentStatus.PAID:
                news.append(events.installment_paid_event(saved, new, now))
    if status is not record.status and status in events.STATUS_EVENTS:
        news.append(events.plan_status_event(events.STATUS_EVENTS[status], to_plan(saved), now))
    principal = sum(p.principal for p in allocation.parts)
    books = [] if accrual is None else [accrual]
    books += [
        posting(record, kind, lines)
        for kind, lines in receivable_changes(record, allocation.installments)
    ]
    books.append(
        posting(
            record,
            "payment.received",
            ledger.consumer_payment(
                principal=principal,
                interest=sum(p.interest for p in allocation.parts),
                fees=sum(p.fees for p in allocation.parts),
            ),
            reference_id=payment.id,
        )
    )
    return _Collected(saved, tuple(changed), item, books, news, principal)


async def settle_batch(
    conn: asyncpg.Connection, rt: Runtime, outcomes: Sequence[Outcome], now: datetime
) -> None:
    """Settle gateway answers in the caller's transaction: plans locked in one order (so
    concurrent settlers never deadlock), the common successes in a few statements, the
    rest one by one."""
    known = {c.plan_id: c.record for c, _ in outcomes if c.record is not None}
    locked = await repository.lock_plans(conn, [c.plan_id for c, _ in outcomes], known)
    records = {r.id: r for r in locked}
    found = {
        p.id: p for p in await payments.get_payments(conn, [c.payment.id for c, _ in outcomes])
    }
    collected: list[_Collected] = []
    others: list[Outcome] = []
    for claim, settlement in outcomes:
        record = records.get(claim.plan_id)
        payment = found.get(claim.payment.id)
        done = None
        if (
            record is not None
            and payment is not None
            and settlement is not None
            and settlement.succeeded
            and payment.status is payments.PaymentStatus.PROCESSING
            and payment.kind is payments.PaymentKind.INSTALLMENT
            and record.status in OPEN_STATUSES
            and record.collection_payment_id == payment.id
        ):
            item = payments.Settle(payment, settlement, merchant_id=record.merchant_id)
            done = _collect(record, payment, item, now)
        if done is None:
            others.append((claim, settlement))
        else:
            collected.append(done)
    if collected:
        await payments.settle_many(conn, [c.item for c in collected], at=now)
        await repository.save_plans(conn, [(c.saved, c.changed) for c in collected], at=now)
        await publish_many(conn, [e for c in collected for e in c.events])
        await ledger.post_many(conn, [p for c in collected for p in c.postings], at=now)
        released: dict[str, int] = {}
        for c in collected:
            released[c.saved.consumer_id] = released.get(c.saved.consumer_id, 0) + c.principal
        hook = rt.hooks.get("release_exposures")
        if hook is not None:
            await hook(conn, released)
        await audit.record_many(
            conn,
            [payment_audit(c.item.payment, payments.PaymentStatus.SUCCEEDED) for c in collected],
            at=now,
        )
    for claim, settlement in others:
        await settle_claim(conn, rt, claim, settlement, now)


async def settle_all(db: Database, rt: Runtime, outcomes: Sequence[Outcome], now: datetime) -> None:
    """`settle_batch` in a transaction of its own. If it fails, each answer is settled in a
    transaction of its own; one that still fails stays `processing` under its lease, to be
    re-sent with the same key and settled by a later run."""
    try:
        async with db.transaction() as conn:
            await settle_batch(conn, rt, outcomes, now)
        return
    except Exception:
        if len(outcomes) == 1:
            log.exception("settling a collection failed", extra={"plan": outcomes[0][0].plan_id})
            return
        log.warning("settling a batch of collections failed; settling them one by one")
    for outcome in outcomes:
        try:
            async with db.transaction() as conn:
                await settle_batch(conn, rt, [outcome], now)
        except Exception:
            log.exception("settling a collection failed", extra={"plan": outcome[0].plan_id})


# --------------------------------------------------------------------------- the run


@dataclass
class CollectAutopay:
    """`installments.collect`: charge the autopay card of every plan whose collection is due.

    A pipeline over one batch of `limit` plans. Claim a chunk (row locks, SKIP LOCKED:
    several workers share the run), record each charge and commit; send the chunk's charges
    (at most `concurrency` in flight) while the next chunk is claimed; settle the answers as
    they arrive, up to `SETTLE_CHUNK` per transaction. Every charge is committed before it is
    sent, and settled in a later transaction: a crash anywhere is resumed with the same keys.
    """

    rt: Runtime
    concurrency: int | None = None  # None: `collection_concurrency` of the settings
    name: str = "installments.collect"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repository.earliest(conn, "collection_due_at", _OPEN)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        concurrency = self.concurrency or self.rt.settings.collection_concurrency
        unsent: asyncio.Queue[Claim | None] = asyncio.Queue()  # committed, not yet sent
        answers: asyncio.Queue[Outcome | None] = asyncio.Queue()
        room = asyncio.Event()  # set while fewer than `concurrency` claims wait to be sent

        async def sender() -> None:
            # `concurrency` of these: at most that many charges in flight.
            while (claim := await unsent.get()) is not None:
                if unsent.qsize() < concurrency:
                    room.set()
                try:
                    answer = await charge(self.rt, claim)
                except Exception:
                    # Sent or not, unknown: settled as "no answer", re-sent later with its key.
                    log.exception("charging a collection failed", extra={"plan": claim.plan_id})
                    answer = None
                answers.put_nowait((claim, answer))

        async def settle() -> None:
            while (first := await answers.get()) is not None:
                chunk = [first]
                while len(chunk) < SETTLE_CHUNK and not answers.empty():
                    more = answers.get_nowait()
                    if more is None:
                        answers.put_nowait(None)  # the end, for the other settlers
                        break
                    chunk.append(more)
                await settle_all(db, self.rt, chunk, now)
            answers.put_nowait(None)

        claimed = 0
        senders = [asyncio.create_task(sender()) for _ in range(concurrency)]
        settlers = [asyncio.create_task(settle()) for _ in range(SETTLERS)]
        try:
            room.set()
            while claimed < limit:
                await room.wait()  # claim ahead only as far as the gateway keeps up
                chunk = min(CLAIM_CHUNK, limit - claimed)
                plans, claims = await claim_batch(db, self.rt, now, chunk)
                claimed += plans
                for claim in claims:
                    unsent.put_nowait(claim)
                if unsent.qsize() >= concurrency:
                    room.clear()
                if plans < chunk:
                    break
            for _ in senders:
                unsent.put_nowait(None)
            await asyncio.gather(*senders)
            answers.put_nowait(None)
            await asyncio.gather(*settlers)
        finally:
            for task in (*senders, *settlers):
                task.cancel()
        return claimed
