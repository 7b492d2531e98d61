"""Notification templates: which events become which messages, and amounts shown exactly."""

from __future__ import annotations

import pytest

from bnpl.notifications.templates import BY_EVENT, TEMPLATES, Channel, money, template_for


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (12_345, "123.45 USD"),
        (5, "0.05 USD"),
        (100, "1.00 USD"),
        (100_000_000, "1,000,000.00 USD"),
        (-700, "-7.00 USD"),
        (0, "0.00 USD"),
    ],
)
def test_amounts_are_shown_from_integer_minor_units(amount: int, shown: str) -> None:
    assert money(amount, "USD") == shown


def test_every_required_template_exists_with_its_channels() -> None:
    assert set(TEMPLATES) == {
        "checkout_approved",
        "checkout_declined",
        "payment_receipt",
        "payment_reminder",
        "payment_failed",
        "late_fee_charged",
        "plan_paid_off",
    }
    assert all(Channel.EMAIL in t.channels for t in TEMPLATES.values())
    assert set(BY_EVENT.values()) <= set(TEMPLATES)


def test_a_refund_is_not_a_payment_receipt() -> None:
    assert template_for("payment.succeeded", {"kind": "refund"}) is None
    receipt = template_for("payment.succeeded", {"kind": "installment"})
    assert receipt is not None and receipt.name == "payment_receipt"
    assert template_for("checkout.created", {}) is None


SAMPLES = {
    "checkout_approved": {"amount": 40_000, "currency": "USD", "plan": "pay_in_4"},
    "checkout_declined": {"amount": 40_000, "currency": "USD", "reasons": ["credit_limit"]},
    "payment_receipt": {"amount": 10_000, "currency": "EUR"},
    "payment_failed": {"amount": 10_000, "currency": "USD", "failure_code": "card_declined"},
    "payment_reminder": {"amount": 10_000, "currency": "USD", "due_date": "2026-12-16"},
    "late_fee_charged": {"late_fee": 700, "currency": "USD", "due_date": "2026-12-16"},
    "plan_paid_off": {"original_principal": 40_000, "currency": "USD"},
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_template_renders_its_figures(name: str) -> None:
    shown = TEMPLATES[name].render(SAMPLES[name])
    assert shown.subject and shown.text
    amount = next(
        v for k, v in SAMPLES[name].items() if k in ("amount", "late_fee", "original_principal")
    )
    assert money(int(amount), str(SAMPLES[name]["currency"])) in shown.text
