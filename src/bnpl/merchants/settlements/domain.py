"""Pure settlement rules (DOMAIN.md "Merchant fees and settlement"), no I/O.

A settlement nets, per merchant and currency, what the merchant service learned of by the
end of one UTC day and had not settled before: captures (positive), refunds and capture fees
(negative), and the shortfall carried over from the day before (negative). Every such amount
is an `Item` with a signed amount, so a settlement's figures and its line-item report are
sums of one set of rows, and the report's lines add up to `net` by construction:

    net = captured - refunded - fees + carried_over        (carried_over <= 0)

A positive net is paid out (`pending` until the payout provider confirms, then `paid`); a
negative one is `carried_over` into the next day's settlement; a zero net is `paid` at once,
with nothing to send.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Final

from bnpl import ledger

REPORT_HEADER: Final = ("type", "reference", "checkout_id", "amount", "currency", "created_at")


class ItemType(StrEnum):
    CAPTURE = "capture"  # + the captured amount; reference: the checkout
    REFUND = "refund"  # - the refund; reference: the refund
    FEE = "fee"  # - the capture's fee (MDR + fixed); reference: the checkout
    CARRIED_OVER = "carried_over"  # - an earlier shortfall; reference: that settlement


class SettlementStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CARRIED_OVER = "carried_over"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of a settlement: a signed amount in minor units."""

    type: ItemType
    reference: str
    checkout_id: str | None
    merchant_id: str
    currency: str
    amount: int
    occurred_at: datetime

    def __post_init__(self) -> None:
        positive = self.type is ItemType.CAPTURE
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("an item's amount is an int of minor units")
        if (self.amount > 0) != positive or self.amount == 0:
            raise ValueError(f"a {self.type} item's amount must be {'>' if positive else '<'} 0")


def capture_items(
    *,
    checkout_id: str,
    merchant_id: str,
    currency: str,
    captured: int,
    fee: int,
    at: datetime,
) -> list[Item]:
    """A capture and its fee (none when the merchant's fee is zero)."""
    items = [Item(ItemType.CAPTURE, checkout_id, checkout_id, merchant_id, currency, captured, at)]
    if fee:
        items.append(Item(ItemType.FEE, checkout_id, checkout_id, merchant_id, currency, -fee, at))
    return items


def refund_item(
    *, refund_id: str, checkout_id: str, merchant_id: str, currency: str, amount: int, at: datetime
) -> Item:
    return Item(ItemType.REFUND, refund_id, checkout_id, merchant_id, currency, -amount, at)


@dataclass(frozen=True, slots=True)
class Totals:
    """A settlement's figures, each positive except `carried_over` (<= 0)."""

    captured: int = 0
    refunded: int = 0
    fees: int = 0
    carried_over: int = 0

    @classmethod
    def of(cls, items: Iterable[Item]) -> Totals:
        sums = dict.fromkeys(ItemType, 0)
        for item in items:
            sums[item.type] += item.amount
        return cls(
            captured=sums[ItemType.CAPTURE],
            refunded=-sums[ItemType.REFUND],
            fees=-sums[ItemType.FEE],
            carried_over=sums[ItemType.CARRIED_OVER],
        )

    @property
    def net(self) -> int:
        return self.captured - self.refunded - self.fees + self.carried_over

    @property
    def status(self) -> SettlementStatus:
        if self.net > 0:
            return SettlementStatus.PENDING
        if self.net < 0:
            return SettlementStatus.CARRIED_OVER
        return SettlementStatus.PAID


@dataclass(frozen=True, slots=True)
class Settlement:
    id: str
    merchant_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    totals: Totals
    status: SettlementStatus
    created_at: datetime
    paid_at: datetime | None = None
    payout_reference: str | None = None
    payout_failure: str | None = None
    payout_attempt: int = 1

    @property
    def net(self) -> int:
        return self.totals.net

    @property
    def payout_key(self) -> str:
        """The payout's idempotency key: one per attempt, and an attempt is new only after
        the provider refused the payout (a call that got no answer is repeated with it)."""
        return f"{self.id}.{self.payout_attempt}"


def period(day: date) -> tuple[datetime, datetime]:
    """The UTC day `day` as a half-open interval [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def postings(settlement: Settlement) -> list[ledger.Posting]:
    """What creating a settlement books: the carried-in shortfall netted (Dr merchant_payable /
    Cr merchant_receivable) and, for a negative net, the new shortfall carried over (Dr
    merchant_receivable / Cr merchant_payable). A positive net is booked when it is paid out
    (`payout_posting`)."""
    books: list[ledger.Posting] = []
    totals = settlement.totals
    if totals.carried_over < 0:
        books.append(_posting(settlement, "settlement.carry_applied", -totals.carried_over))
    if totals.net < 0:
        books.append(_posting(settlement, "settlement.carried_over", -totals.net))
    return books


def payout_posting(settlement: Settlement) -> ledger.Posting:
    """A positive net paid out: Dr merchant_payable / Cr payouts_clearing."""
    return _posting(settlement, "settlement.paid", settlement.net)


def _posting(settlement: Settlement, kind: str, amount: int) -> ledger.Posting:
    recipe = {
        "settlement.carry_applied": ledger.apply_carried_over,
        "settlement.carried_over": ledger.carry_negative_net,
        "settlement.paid": ledger.settlement_payout,
    }[kind]
    return ledger.Posting(
        kind=kind,
        reference_id=settlement.id,
        currency=settlement.currency,
        lines=recipe(amount),
        merchant_id=settlement.merchant_id,
    )


def report_lines(items: Sequence[Item]) -> list[Item]:
    """A settlement's items in report order: the carried-over balance first, then by time."""
    return sorted(items, key=lambda i: (i.type is not ItemType.CARRIED_OVER, i.occurred_at))


def report_csv(items: Sequence[Item]) -> str:
    """The line-item report: `type,reference,checkout_id,amount,currency,created_at`, signed
    minor units, one line per item; the amounts sum to the settlement's net."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_HEADER)
    for item in report_lines(items):
        writer.writerow(
            (
                item.type.value,
                item.reference,
                item.checkout_id or "",
                item.amount,
                item.currency,
                item.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            )
        )
    return out.getvalue()
