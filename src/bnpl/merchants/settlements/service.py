"""Settlement: the items checkout's events bring, the daily settlement run, the payouts.

1. **Items.** `checkout.captured` and `checkout.refunded` become signed items (capture +,
   fee -, refund -) in the merchant service's own table, once per event (unique by type and
   reference, on top of the consumer's inbox).
2. **The day's settlement** (`SettleDays`, due at the midnight UTC after a day with items):
   one transaction claims every unsettled item before the day's end, per merchant and
   currency, together with the merchant's shortfall carried over from before; sums them;
   writes the settlements; books the carried-in shortfall netted and a new negative net
   carried over; emits `settlement.created`; audits. An item that arrives after its day was
   settled (a late event) is in the next settlement: none is lost, none is in two.
3. **Payouts** (`PayOutSettlements`): a pending settlement's payout is leased and committed,
   sent to the payout provider outside any transaction with the key `<id>.<attempt>`, and
   its answer recorded in a later transaction: `paid`, the net booked out of
   merchant_payable, `settlement.paid`. No answer: sent again with the same key 5 minutes
   later (the provider pays a key once). Refused (a closed account): tried again a day later
   with a new key, the failure shown on the settlement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

import asyncpg

from bnpl import audit, ledger
from bnpl.kit.db import Database
from bnpl.kit.errors import not_found
from bnpl.kit.ids import new_id
from bnpl.merchants import service as merchants
from bnpl.merchants.settlements import repository as repo
from bnpl.merchants.settlements.domain import (
    Item,
    ItemType,
    Settlement,
    SettlementStatus,
    capture_items,
    payout_posting,
    period,
    postings,
    refund_item,
    report_csv,
)
from bnpl.merchants.settlements.schemas import SettlementOut
from bnpl.messaging import Event, NewEvent, publish_many
from bnpl.providers import PayoutResult, ProviderUnavailable

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

CREATED: Final = "settlement.created"
PAID: Final = "settlement.paid"
# Consumed from checkout (by type name).
CHECKOUT_CAPTURED: Final = "checkout.captured"
CHECKOUT_REFUNDED: Final = "checkout.refunded"

PAYOUT_LEASE: Final = timedelta(minutes=2)  # other workers leave a payout in flight alone
NO_ANSWER_RETRY: Final = timedelta(minutes=5)  # sent again, same key
REFUSED_RETRY: Final = timedelta(days=1)  # tried again, new key
PAYOUTS_IN_FLIGHT: Final = 16
_SETTLE_LOCK: Final = 0x5354_4C44  # "STLD": one process settles days at a time


# --------------------------------------------------------------------------- items


def items_of_event(event: Event) -> list[Item]:
    """The settlement items a checkout event brings (none for a capture of nothing)."""
    data = event.data
    merchant_id, currency, checkout_id = (
        str(data["merchant_id"]),
        str(data["currency"]),
        str(data["id"]),
    )
    if event.type == CHECKOUT_CAPTURED:
        return capture_items(
            checkout_id=checkout_id,
            merchant_id=merchant_id,
            currency=currency,
            captured=int(data["captured_amount"]),
            fee=int(data.get("fee") or 0),
            at=event.occurred_at,
        )
    return [
        refund_item(
            refund_id=str(data["refund_id"]),
            checkout_id=checkout_id,
            merchant_id=merchant_id,
            currency=currency,
            amount=int(data["refund_amount"]),
            at=event.occurred_at,
        )
    ]


async def record_items(conn: asyncpg.Connection, event: Event) -> None:
    await repo.insert_items(conn, items_of_event(event))


# --------------------------------------------------------------------------- the day's run


async def next_day(conn: asyncpg.Connection) -> date | None:
    """The next UTC day to settle: the day after the last one settled, or a later day if
    nothing is waiting before it (days without items are skipped); None: nothing waits."""
    earliest = await repo.earliest_unsettled(conn)
    if earliest is None:
        return None
    last = await repo.last_settled_day(conn)
    day = earliest.date()
    return day if last is None or day > last else last + timedelta(days=1)


async def settle_day(conn: asyncpg.Connection, day: date, now: datetime) -> list[Settlement]:
    """Settle `day`, in the caller's transaction (which holds the settling lock)."""
    start, end = period(day)
    groups = await repo.unsettled_groups(conn, end)
    ids = {group: new_id("stl") for group in sorted(groups)}
    carries = await repo.open_carries(conn, list(ids))
    await repo.claim_items(conn, ids, end)
    await repo.insert_items(
        conn,
        [
            Item(ItemType.CARRIED_OVER, c.id, None, c.merchant_id, c.currency, c.net, c.created_at)
            for c in carries
        ],
        [ids[c.merchant_id, c.currency] for c in carries],
    )
    await repo.mark_carried_into(conn, [(c.id, ids[c.merchant_id, c.currency]) for c in carries])
    sums = await repo.totals(conn, list(ids.values()))
    settlements = []
    for (merchant_id, currency), settlement_id in ids.items():
        totals = sums[settlement_id]
        status = totals.status
        settlements.append(
            Settlement(
                id=settlement_id,
                merchant_id=merchant_id,
                currency=currency,
                period_start=start,
                period_end=end,
                totals=totals,
                status=status,
                created_at=now,
                paid_at=now if status is SettlementStatus.PAID else None,  # nothing to pay
            )
        )
    await repo.insert_settlements(conn, settlements, payout_due_at=now)
    await ledger.post_many(conn, [p for s in settlements for p in postings(s)], at=now)
    await publish_many(conn, [_event(CREATED, s) for s in settlements])
    await audit.record_many(conn, [_audit("settlement.created", s) for s in settlements], at=now)
    await repo.record_day(conn, day, len(settlements), now)
    return settlements


def _event(type: str, s: Settlement) -> NewEvent:
    return NewEvent(
        type=type,
        aggregate_id=s.id,
        data=SettlementOut.of(s).model_dump(mode="json"),
        occurred_at=s.paid_at if type == PAID and s.paid_at else s.created_at,
        merchant_id=s.merchant_id,
    )


def _audit(action: str, s: Settlement, **extra: object) -> audit.AuditEntry:
    return audit.AuditEntry(
        actor="system",
        action=action,
        entity_id=s.id,
        data={
            "merchant_id": s.merchant_id,
            "currency": s.currency,
            "net": s.net,
            "status": s.status.value,
            **extra,
        },
    )


@dataclass
class SettleDays:
    """`merchants.settle`: each UTC day with items is settled at the midnight after it."""

    name: str = "merchants.settle"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            day = await next_day(conn)
        return None if day is None else period(day)[1]

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        done = 0
        async with db.transaction() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _SETTLE_LOCK):
                return 0  # another worker is settling
            while done < limit:
                day = await next_day(conn)
                if day is None or period(day)[1] > now:
                    break
                await settle_day(conn, day, now)
                done += 1
        return done


# --------------------------------------------------------------------------- payouts


@dataclass
class PayOutSettlements:
    """`merchants.pay_out`: send each pending settlement's net to the merchant's account."""

    rt: Runtime
    name: str = "merchants.pay_out"

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_payout_due(conn)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        async with db.transaction() as conn:
            claimed = await repo.claim_payouts(conn, now, now + PAYOUT_LEASE, limit)
            accounts = {
                m: await merchants.settlement_account(conn, m, aes_key=self.rt.settings.aes_key)
                for m in {s.merchant_id for s in claimed}
            }
        gate = asyncio.Semaphore(PAYOUTS_IN_FLIGHT)

        async def send(s: Settlement) -> PayoutResult | None:
            account = accounts.get(s.merchant_id)
            if account is None:
                return PayoutResult(None, "no_settlement_account")
            async with gate:
                try:
                    return await self.rt.providers.payouts.pay_out(
                        amount=s.net,
                        currency=s.currency,
                        account_number=account.account_number,
                        routing_number=account.routing_number,
                        reference=s.id,
                        idempotency_key=s.payout_key,
                    )
                except ProviderUnavailable as exc:
                    log.warning("payout got no answer", extra={"settlement": s.id, "why": exc})
                    return None

        answers = await asyncio.gather(*(send(s) for s in claimed))
        for s, answer in zip(claimed, answers, strict=True):
            try:
                async with db.transaction() as conn:
                    await record_payout(conn, s, answer, now)
            except Exception:
                # The lease runs out and the payout is sent again with its key: paid once.
                log.exception("recording a payout failed", extra={"settlement": s.id})
        return len(claimed)


async def record_payout(
    conn: asyncpg.Connection, sent: Settlement, answer: PayoutResult | None, now: datetime
) -> None:
    """Record the provider's answer to the payout of `sent` (None: no answer came)."""
    current = await repo.lock(conn, sent.id)
    if (
        current is None
        or current.status is not SettlementStatus.PENDING
        or current.payout_attempt != sent.payout_attempt
    ):
        return  # recorded already (another worker, same key, same answer)
    if answer is None:
        await repo.reschedule_payout(conn, sent.id, now + NO_ANSWER_RETRY)
    elif answer.paid:
        assert answer.reference is not None
        await repo.mark_paid(conn, sent.id, answer.reference, now)
        paid = replace(
            current,
            status=SettlementStatus.PAID,
            paid_at=now,
            payout_reference=answer.reference,
            payout_failure=None,
        )
        await ledger.post_many(conn, [payout_posting(paid)], at=now)
        await publish_many(conn, [_event(PAID, paid)])
        await audit.record_many(
            conn, [_audit("settlement.paid", paid, payout_reference=answer.reference)], at=now
        )
    else:
        log.warning("payout refused", extra={"settlement": sent.id, "code": answer.code})
        await repo.reschedule_payout(
            conn, sent.id, now + REFUSED_RETRY, failure=answer.code, next_attempt=True
        )
        await audit.record_many(
            conn, [_audit("settlement.payout_refused", current, code=answer.code)], at=now
        )


# --------------------------------------------------------------------------- reading


async def get_settlement(
    conn: asyncpg.Connection, settlement_id: str, merchant_id: str | None
) -> Settlement:
    """The settlement; 404 if there is none, or it is another merchant's."""
    found = await repo.get(conn, settlement_id)
    if found is None or (merchant_id is not None and found.merchant_id != merchant_id):
        raise not_found("settlement")
    return found


async def list_settlements(
    conn: asyncpg.Connection,
    *,
    merchant_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> Sequence[Settlement]:
    return await repo.list_settlements(
        conn, merchant_id=merchant_id, status=status, after=after, limit=limit
    )


async def report(conn: asyncpg.Connection, settlement: Settlement) -> str:
    """The settlement's line-item report (CSV)."""
    return report_csv(await repo.items_of(conn, settlement.id))
