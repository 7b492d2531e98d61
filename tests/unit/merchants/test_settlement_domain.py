"""The settlement rules: signed items, the figures and status, the ledger, the CSV report."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bnpl import ledger
from bnpl.merchants.settlements.domain import (
    REPORT_HEADER,
    Item,
    ItemType,
    Settlement,
    SettlementStatus,
    Totals,
    capture_items,
    payout_posting,
    period,
    postings,
    refund_item,
    report_csv,
)

AT = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)


def _settlement(totals: Totals) -> Settlement:
    start, end = period(date(2026, 12, 1))
    return Settlement("stl_1", "mer_1", "USD", start, end, totals, totals.status, AT)


def _items() -> list[Item]:
    return [
        *capture_items(
            checkout_id="chk_1",
            merchant_id="mer_1",
            currency="USD",
            captured=40_000,
            fee=1_626,
            at=AT,
        ),
        refund_item(
            refund_id="ref_1",
            checkout_id="chk_1",
            merchant_id="mer_1",
            currency="USD",
            amount=5_000,
            at=AT + timedelta(hours=1),
        ),
        Item(ItemType.CARRIED_OVER, "stl_0", None, "mer_1", "USD", -700, AT + timedelta(hours=2)),
    ]


def test_a_capture_brings_its_fee_and_a_refund_a_negative_line() -> None:
    capture, fee, refund, carried = _items()
    assert (capture.type, capture.amount, capture.reference) == (ItemType.CAPTURE, 40_000, "chk_1")
    assert (fee.type, fee.amount, fee.checkout_id) == (ItemType.FEE, -1_626, "chk_1")
    assert (refund.type, refund.amount, refund.reference) == (ItemType.REFUND, -5_000, "ref_1")
    assert carried.checkout_id is None
    no_fee = capture_items(
        checkout_id="chk_2", merchant_id="m", currency="USD", captured=100, fee=0, at=AT
    )
    assert [i.type for i in no_fee] == [ItemType.CAPTURE]


@pytest.mark.parametrize(
    ("type_", "amount"),
    [(ItemType.CAPTURE, -1), (ItemType.CAPTURE, 0), (ItemType.FEE, 30), (ItemType.REFUND, 0)],
)
def test_an_item_with_the_wrong_sign_is_refused(type_: ItemType, amount: int) -> None:
    with pytest.raises(ValueError, match="amount must be"):
        Item(type_, "r", None, "m", "USD", amount, AT)


def test_an_item_amount_is_an_integer_of_minor_units() -> None:
    with pytest.raises(TypeError):
        Item(ItemType.CAPTURE, "r", None, "m", "USD", 10.5, AT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Item(ItemType.CAPTURE, "r", None, "m", "USD", True, AT)


def test_the_figures_are_sums_of_the_items_and_net_is_their_total() -> None:
    totals = Totals.of(_items())
    assert totals == Totals(captured=40_000, refunded=5_000, fees=1_626, carried_over=-700)
    assert totals.net == 40_000 - 5_000 - 1_626 - 700 == sum(i.amount for i in _items())


@pytest.mark.parametrize(
    ("totals", "status"),
    [
        (Totals(captured=1_000, fees=59), SettlementStatus.PENDING),
        (Totals(captured=1_000, refunded=2_000, fees=59), SettlementStatus.CARRIED_OVER),
        (Totals(captured=1_000, fees=59, carried_over=-941), SettlementStatus.PAID),
        (Totals(), SettlementStatus.PAID),
    ],
)
def test_a_positive_net_is_paid_out_a_negative_one_carried_over(
    totals: Totals, status: SettlementStatus
) -> None:
    assert totals.status is status


def test_the_period_is_one_utc_day_half_open() -> None:
    start, end = period(date(2026, 12, 31))
    assert start == datetime(2026, 12, 31, tzinfo=UTC)
    assert end == datetime(2027, 1, 1, tzinfo=UTC)


def _moves(entries: list[ledger.Posting]) -> dict[tuple[str, str], int]:
    moved: dict[tuple[str, str], int] = {}
    for entry in entries:
        assert ledger.validate_entry(entry.currency, tuple(entry.lines)) > 0  # balanced
        for line in entry.lines:
            key = (line.account.value, line.side.value)
            moved[key] = moved.get(key, 0) + line.amount
    return moved


def test_a_carried_in_shortfall_is_netted_and_a_new_one_carried_over() -> None:
    s = _settlement(Totals(captured=1_000, refunded=3_000, fees=59, carried_over=-500))
    assert s.net == -2_559
    assert _moves(postings(s)) == {
        ("merchant_payable", "debit"): 500,
        ("merchant_receivable", "credit"): 500,
        ("merchant_receivable", "debit"): 2_559,
        ("merchant_payable", "credit"): 2_559,
    }


def test_a_positive_net_books_nothing_until_paid_out() -> None:
    s = _settlement(Totals(captured=10_000, fees=429))
    assert postings(s) == []
    payout = payout_posting(s)
    assert (payout.kind, payout.reference_id, payout.merchant_id) == (
        "settlement.paid",
        "stl_1",
        "mer_1",
    )
    assert _moves([payout]) == {
        ("merchant_payable", "debit"): 9_571,
        ("payouts_clearing", "credit"): 9_571,
    }


def test_a_payout_key_changes_only_with_the_attempt() -> None:
    s = _settlement(Totals(captured=10_000))
    assert s.payout_key == "stl_1.1"
    assert replace(s, payout_attempt=2).payout_key == "stl_1.2"


def test_the_report_has_the_header_one_line_per_item_and_sums_to_net() -> None:
    items = _items()
    rows = list(csv.reader(io.StringIO(report_csv(items))))
    assert tuple(rows[0]) == REPORT_HEADER
    body = rows[1:]
    assert [r[0] for r in body] == ["carried_over", "capture", "fee", "refund"]
    assert sum(int(r[3]) for r in body) == Totals.of(items).net == 32_674
    assert body[0][1:3] == ["stl_0", ""]
    assert body[1] == ["capture", "chk_1", "chk_1", "40000", "USD", "2026-12-01T15:30:00Z"]
    assert body[3][1:4] == ["ref_1", "chk_1", "-5000"]
