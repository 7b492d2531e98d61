"""What pages show, in people's words: money formatted at the edge (integers of minor units
until here), plan schedules built by the same code that builds plans (`installments`), and
the adverse-action reasons of a decline (DOMAIN.md, "Credit decision") in plain words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final
from urllib.parse import urlsplit

from bnpl import installments

_SYMBOLS: Final = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


def money(amount: int, currency: str) -> str:
    """`1250, "USD"` -> `$12.50` (every supported currency has two decimals)."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    return f"{sign}{_SYMBOLS.get(currency, currency + ' ')}{units:,}.{cents:02d}"


def percent(bps: int) -> str:
    """`1999` -> `19.99%`, `1500` -> `15%`, `0` -> `0%`."""
    whole, frac = divmod(bps, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + "%"


def day(d: date | str) -> str:
    """`2026-12-05` -> `Dec 5, 2026`."""
    value = date.fromisoformat(d) if isinstance(d, str) else d
    return f"{value:%b} {value.day}, {value.year}"


REASONS: Final = {
    "kyc_not_verified": "We could not verify your identity.",
    "underage": "You must be 18 or older to use pay-later plans.",
    "amount_out_of_range": "This amount is outside what this plan can finance.",
    "delinquent_account": "One of your plans has a payment that is past due.",
    "velocity_limit": "You have made too many purchases with us in the last 24 hours.",
    "insufficient_credit_limit": "This purchase is more than the credit you have available.",
    "risk_score_too_high": (
        "Based on the information in your credit report and your history with us, "
        "we cannot approve this purchase right now."
    ),
    "payment_method_declined": "Your card declined the first payment.",
}


def reason(code: str) -> str:
    return REASONS.get(code, code.replace("_", " ").capitalize() + ".")


PLAN_TITLES: Final = {
    "pay_in_4": "Pay in 4",
    "monthly_6": "6 monthly payments",
    "monthly_12": "12 monthly payments",
}


@dataclass(frozen=True, slots=True)
class Line:
    seq: int
    due_date: date
    amount: int
    interest: int


@dataclass(frozen=True, slots=True)
class Offer:
    """One plan on offer with the schedule it would have if confirmed today."""

    plan: str
    title: str
    apr_bps: int
    installment_amount: int
    lines: list[Line]
    interest: int
    total: int
    down_payment: bool

    @property
    def monthly(self) -> bool:
        return self.plan != "pay_in_4"


def offer(plan: str, amount: int, apr_bps: int, installment_amount: int, today: date) -> Offer:
    kind = installments.PlanKind(plan)
    schedule = installments.build_schedule(kind, amount, apr_bps, today)
    lines = [Line(s.seq, s.due_date, s.amount, s.interest) for s in schedule]
    interest = sum(s.interest for s in schedule)
    return Offer(
        plan=plan,
        title=PLAN_TITLES.get(plan, plan),
        apr_bps=apr_bps,
        installment_amount=installment_amount,
        lines=lines,
        interest=interest,
        total=amount + interest,
        down_payment=kind.has_down_payment,
    )


def promo_lines(offers: list[Offer], currency: str) -> list[str]:
    """The widget's message: "or 4 interest-free payments of $12.50", "or from $34.00/mo"."""
    lines = []
    for o in offers:
        if not o.monthly:
            lines.append(f"or 4 interest-free payments of {money(o.installment_amount, currency)}")
            break
    monthly = [o for o in offers if o.monthly]
    if monthly:
        cheapest = min(monthly, key=lambda o: o.installment_amount)
        lines.append(
            f"or from {money(cheapest.installment_amount, currency)}/mo "
            f"at {percent(cheapest.apr_bps)} APR"
        )
    return lines


def web_url(url: str | None) -> str | None:
    """`url` if it is an http(s) URL a page may link or redirect to (never `javascript:`)."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def parse_amount(text: str) -> int | None:
    """`"12.50"` / `"$1,012.5"` / `"12"` -> minor units, exactly (no float on the way), or None."""
    match = re.fullmatch(r"\s*\$?\s*(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{1,2}))?\s*", text)
    if match is None:
        return None
    units = int(match.group(1).replace(",", ""))
    cents = int((match.group(2) or "0").ljust(2, "0"))
    return units * 100 + cents
