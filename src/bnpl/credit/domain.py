"""The credit decision rules (DOMAIN.md, "Credit decision"): pure, no I/O, no clock.

The rules run in DOMAIN.md's order and the first one that fails gives the decline reason:

1. ``kyc_not_verified``          the consumer's KYC status is not ``verified``;
2. ``underage``                  younger than 18 on the decision date;
3. ``amount_out_of_range``       outside the plan's range narrowed by the merchant's;
4. ``delinquent_account``        a plan of the consumer is ``delinquent`` or ``charged_off``;
5. ``velocity_limit``            this checkout would be more than N approved in 24 hours;
6. ``insufficient_credit_limit`` open principal + this amount exceeds the credit limit;
7. ``risk_score_too_high``       the model's probability of default is above the cutoff.

Rule 8 (``payment_method_declined``) is decided later, by the down payment charge; only its
reason code lives here. Every decision is scored (DOMAIN.md: every decision is stored with its
score), a rule 1-6 decline too: ``decide`` always evaluates the probability (``DecisionInput``
takes it or a function computing it) and the outcome carries it, while the reason stays the
first failing rule's. ``first_failing_rule`` tells, before any score, whether rules 1-6 pass
(what the service needs to know before asking the bureau).

Money is integer minor units, all in the checkout's currency, compared as integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "DEFAULT_MAX_APPROVALS_24H",
    "KYC_VERIFIED",
    "MINIMUM_AGE_YEARS",
    "RULE_ORDER",
    "CreditPolicy",
    "DecisionInput",
    "DecisionOutcome",
    "DeclineReason",
    "adulthood_date",
    "amount_range",
    "decide",
    "first_failing_rule",
]

KYC_VERIFIED = "verified"
MINIMUM_AGE_YEARS = 18
DEFAULT_MAX_APPROVALS_24H = 5


class DeclineReason(StrEnum):
    """Decline reason codes: part of the API and of the adverse-action notice."""

    KYC_NOT_VERIFIED = "kyc_not_verified"
    UNDERAGE = "underage"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    DELINQUENT_ACCOUNT = "delinquent_account"
    VELOCITY_LIMIT = "velocity_limit"
    INSUFFICIENT_CREDIT_LIMIT = "insufficient_credit_limit"
    RISK_SCORE_TOO_HIGH = "risk_score_too_high"
    PAYMENT_METHOD_DECLINED = "payment_method_declined"


# The order in which the rules are checked (rule 8 comes after a successful decision).
RULE_ORDER: tuple[DeclineReason, ...] = tuple(DeclineReason)


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """The configurable part of the rules.

    ``max_approvals_24h``: the most approved checkouts a consumer may have in any 24 hours,
    *counting the one being decided*. DOMAIN.md declines "more than 5 approved checkouts in the
    last 24 hours": a consumer with 5 approvals already would, if approved, have 6, so they are
    declined; one with 4 approvals gets a 5th. That is ``approvals_24h >= max_approvals_24h``
    declines.

    ``risk_cutoff``: the highest probability of default that is approved (a probability exactly
    at the cutoff is approved). The model's metadata suggests one (``suggested_cutoff``).
    """

    risk_cutoff: float
    max_approvals_24h: int = DEFAULT_MAX_APPROVALS_24H

    def __post_init__(self) -> None:
        if not 0.0 <= self.risk_cutoff <= 1.0:  # also rejects NaN
            raise ValueError(f"risk_cutoff must be a probability in [0, 1], got {self.risk_cutoff}")
        if not _is_int(self.max_approvals_24h) or self.max_approvals_24h < 0:
            raise ValueError(f"max_approvals_24h must be an int >= 0, got {self.max_approvals_24h}")


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """The facts a credit decision is made from. Amounts are minor units of one currency.

    - ``decision_date``: the platform clock's date in UTC (a ``date``, not a ``datetime``).
    - ``merchant_min_amount`` / ``merchant_max_amount``: the merchant's own range for this plan,
      ``None`` where it has not narrowed it. It can narrow the plan's range, never widen it.
    - ``has_delinquent_plan``: any plan of the consumer is ``delinquent`` or ``charged_off``.
    - ``approvals_24h``: approved checkouts of the consumer in the 24 hours before this decision,
      not counting this one.
    - ``open_principal``: outstanding principal of all the consumer's open plans, not counting
      this checkout.
    - ``risk_probability``: the model's probability of default, or a function returning it
      (called once per ``decide``, whatever the rules say).
    """

    kyc_status: str
    date_of_birth: date
    decision_date: date
    amount: int
    plan_min_amount: int
    plan_max_amount: int
    merchant_min_amount: int | None
    merchant_max_amount: int | None
    has_delinquent_plan: bool
    approvals_24h: int
    open_principal: int
    credit_limit: int
    risk_probability: float | Callable[[], float]

    def __post_init__(self) -> None:
        for name in ("date_of_birth", "decision_date"):
            value = getattr(self, name)
            if isinstance(value, datetime) or not isinstance(value, date):
                raise TypeError(f"{name} must be a date, got {value!r}")
        # Money and counts are ints: a float here is a bug upstream, not something to round.
        for name in (
            "amount",
            "plan_min_amount",
            "plan_max_amount",
            "approvals_24h",
            "open_principal",
            "credit_limit",
        ):
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        for name in ("merchant_min_amount", "merchant_max_amount"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
        if self.amount <= 0:
            raise ValueError(f"amount must be positive, got {self.amount}")


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """The decision: approved, or declined with the reason of the first failing rule.

    ``risk_probability`` is the model's score; ``decide`` always sets it, a decline by rules 1-6
    included (``None`` only for an outcome built by hand).
    """

    approved: bool
    reasons: list[str] = field(default_factory=list)
    risk_probability: float | None = None


def adulthood_date(date_of_birth: date, years: int = MINIMUM_AGE_YEARS) -> date:
    """The first day on which someone born on ``date_of_birth`` is ``years`` old.

    Someone born on 29 February comes of age on 1 March in a non-leap year: the later of the
    two candidate days, so that nobody who might still be a minor is lent to.
    """
    try:
        return date_of_birth.replace(year=date_of_birth.year + years)
    except ValueError:  # 29 February in a non-leap year
        return date(date_of_birth.year + years, 3, 1)


def amount_range(
    plan_min_amount: int,
    plan_max_amount: int,
    merchant_min_amount: int | None,
    merchant_max_amount: int | None,
) -> tuple[int, int]:
    """The inclusive amount range of a plan at a merchant: the plan's, narrowed by the
    merchant's (a merchant setting that would widen it is ignored)."""
    low, high = plan_min_amount, plan_max_amount
    if merchant_min_amount is not None:
        low = max(low, merchant_min_amount)
    if merchant_max_amount is not None:
        high = min(high, merchant_max_amount)
    return low, high


def decide(facts: DecisionInput, policy: CreditPolicy) -> DecisionOutcome:
    """Apply the credit rules in order; the first failing rule declines with its reason.

    The probability is evaluated (and checked) for every decision, so that a decline by rules
    1-6 records its score too; it only decides the outcome through rule 7.
    """
    probability = _probability(facts)
    reason = first_failing_rule(facts, policy)
    if reason is not None:
        return _declined(reason, probability)
    if probability > policy.risk_cutoff:
        return _declined(DeclineReason.RISK_SCORE_TOO_HIGH, probability)
    return DecisionOutcome(approved=True, reasons=[], risk_probability=probability)


def _probability(facts: DecisionInput) -> float:
    probability = (
        facts.risk_probability() if callable(facts.risk_probability) else facts.risk_probability
    )
    # A NaN would compare as "not above the cutoff" and approve: fail loudly instead.
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise TypeError(f"risk probability must be a float, got {probability!r}")
    if math.isnan(probability) or not 0.0 <= probability <= 1.0:
        raise ValueError(f"risk probability must be in [0, 1], got {probability}")
    return float(probability)


def first_failing_rule(facts: DecisionInput, policy: CreditPolicy) -> DeclineReason | None:
    """The first of rules 1-6 that fails, or ``None`` when they all pass (no score needed;
    ``facts.risk_probability`` is not looked at)."""
    if facts.kyc_status != KYC_VERIFIED:
        return DeclineReason.KYC_NOT_VERIFIED
    if facts.decision_date < adulthood_date(facts.date_of_birth):
        return DeclineReason.UNDERAGE
    low, high = amount_range(
        facts.plan_min_amount,
        facts.plan_max_amount,
        facts.merchant_min_amount,
        facts.merchant_max_amount,
    )
    if not low <= facts.amount <= high:
        return DeclineReason.AMOUNT_OUT_OF_RANGE
    if facts.has_delinquent_plan:
        return DeclineReason.DELINQUENT_ACCOUNT
    # Counting this checkout, the consumer would have approvals_24h + 1 in the window.
    if facts.approvals_24h + 1 > policy.max_approvals_24h:
        return DeclineReason.VELOCITY_LIMIT
    if facts.open_principal + facts.amount > facts.credit_limit:
        return DeclineReason.INSUFFICIENT_CREDIT_LIMIT
    return None


def _declined(reason: DeclineReason, probability: float | None = None) -> DecisionOutcome:
    return DecisionOutcome(approved=False, reasons=[reason.value], risk_probability=probability)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
