"""What the platform tells a consumer, and on which channels (pure: no I/O).

Each template renders a subject (email subject, push title) and a short text (email body,
SMS, push body) from the event's data. Amounts are integer minor units, shown with two
decimals by integer arithmetic (never a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str


def money(amount: int, currency: str) -> str:
    """12345 USD -> "123.45 USD" (every supported currency has two decimals)."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    return f"{sign}{units:,}.{cents:02d} {currency}"


_PLAN_NAMES: Final = {"pay_in_4": "Pay in 4", "monthly_6": "6 monthly", "monthly_12": "12 monthly"}


def _checkout_approved(d: Mapping[str, Any]) -> Rendered:
    plan = _PLAN_NAMES.get(str(d.get("plan")), "installments")
    return Rendered(
        "Your purchase is approved",
        f"Your purchase of {money(int(d['amount']), str(d['currency']))} is approved, "
        f"paid in {plan}.",
    )


def _checkout_declined(d: Mapping[str, Any]) -> Rendered:
    reasons = ", ".join(str(r).replace("_", " ") for r in d.get("reasons") or []) or "our rules"
    return Rendered(
        "We could not approve your purchase",
        f"Your purchase of {money(int(d['amount']), str(d['currency']))} was not approved "
        f"({reasons}).",
    )


def _payment_receipt(d: Mapping[str, Any]) -> Rendered:
    return Rendered(
        "Payment received",
        f"We received your payment of {money(int(d['amount']), str(d['currency']))}. Thank you.",
    )


def _payment_failed(d: Mapping[str, Any]) -> Rendered:
    code = str(d.get("failure_code") or "declined").replace("_", " ")
    return Rendered(
        "Your payment did not go through",
        f"Your payment of {money(int(d['amount']), str(d['currency']))} failed ({code}). "
        "Please check your card or add a new one.",
    )


def _payment_reminder(d: Mapping[str, Any]) -> Rendered:
    return Rendered(
        "Payment due in 3 days",
        f"Your payment of {money(int(d['amount']), str(d['currency']))} is due on "
        f"{d['due_date']}; it will be charged to your card.",
    )


def _late_fee_charged(d: Mapping[str, Any]) -> Rendered:
    return Rendered(
        "A late fee was charged",
        f"Your payment due on {d['due_date']} is late: a fee of "
        f"{money(int(d['late_fee']), str(d['currency']))} was added.",
    )


def _plan_paid_off(d: Mapping[str, Any]) -> Rendered:
    return Rendered(
        "Your plan is paid off",
        f"You paid off your plan of {money(int(d['original_principal']), str(d['currency']))}.",
    )


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    channels: tuple[Channel, ...]
    render: Any  # Callable[[Mapping[str, Any]], Rendered]


TEMPLATES: Final[Mapping[str, Template]] = {
    t.name: t
    for t in (
        Template("checkout_approved", (Channel.EMAIL, Channel.PUSH), _checkout_approved),
        Template("checkout_declined", (Channel.EMAIL,), _checkout_declined),
        Template("payment_receipt", (Channel.EMAIL,), _payment_receipt),
        Template("payment_failed", (Channel.EMAIL, Channel.SMS), _payment_failed),
        Template("payment_reminder", (Channel.EMAIL, Channel.SMS, Channel.PUSH), _payment_reminder),
        Template("late_fee_charged", (Channel.EMAIL, Channel.SMS), _late_fee_charged),
        Template("plan_paid_off", (Channel.EMAIL, Channel.PUSH), _plan_paid_off),
    )
}

# Which template an event becomes (payments: a refund is not a payment the consumer made).
BY_EVENT: Final[Mapping[str, str]] = {
    "checkout.authorized": "checkout_approved",
    "checkout.declined": "checkout_declined",
    "payment.succeeded": "payment_receipt",
    "payment.failed": "payment_failed",
    "installment.late": "late_fee_charged",
    "plan.paid_off": "plan_paid_off",
}
NOT_A_CONSUMER_PAYMENT: Final = frozenset({"refund"})


def template_for(event_type: str, data: Mapping[str, Any]) -> Template | None:
    name = BY_EVENT.get(event_type)
    if name is None:
        return None
    if event_type.startswith("payment.") and data.get("kind") in NOT_A_CONSUMER_PAYMENT:
        return None
    return TEMPLATES[name]
