from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnpl.credit.domain import (
    RULE_ORDER,
    CreditPolicy,
    DecisionInput,
    DecisionOutcome,
    DeclineReason,
    adulthood_date,
    amount_range,
    decide,
    first_failing_rule,
)

TODAY = date(2026, 11, 25)
POLICY = CreditPolicy(risk_cutoff=0.2)


def facts(**changes: Any) -> DecisionInput:
    """An applicant who passes every rule; ``changes`` breaks the ones a test is about."""
    base = DecisionInput(
        kyc_status="verified",
        date_of_birth=date(1990, 6, 15),
        decision_date=TODAY,
        amount=40_000,
        plan_min_amount=1_000,
        plan_max_amount=200_000,
        merchant_min_amount=None,
        merchant_max_amount=None,
        has_delinquent_plan=False,
        approvals_24h=0,
        open_principal=10_000,
        credit_limit=100_000,
        risk_probability=0.05,
    )
    return dataclasses.replace(base, **changes)


def reason_of(outcome: DecisionOutcome) -> str | None:
    assert outcome.approved is (not outcome.reasons)
    assert len(outcome.reasons) <= 1
    return outcome.reasons[0] if outcome.reasons else None


def test_an_applicant_passing_every_rule_is_approved_with_the_score() -> None:
    outcome = decide(facts(), POLICY)
    assert outcome == DecisionOutcome(approved=True, reasons=[], risk_probability=0.05)


def test_reason_codes_are_the_api_strings_in_rule_order() -> None:
    assert [reason.value for reason in RULE_ORDER] == [
        "kyc_not_verified",
        "underage",
        "amount_out_of_range",
        "delinquent_account",
        "velocity_limit",
        "insufficient_credit_limit",
        "risk_score_too_high",
        "payment_method_declined",
    ]
    assert DeclineReason.PAYMENT_METHOD_DECLINED.value == "payment_method_declined"


# Each rule broken on its own: (changes, expected reason).
BREAK: dict[DeclineReason, dict[str, Any]] = {
    DeclineReason.KYC_NOT_VERIFIED: {"kyc_status": "pending"},
    DeclineReason.UNDERAGE: {"date_of_birth": date(2010, 1, 1)},
    DeclineReason.AMOUNT_OUT_OF_RANGE: {"amount": 200_001},
    DeclineReason.DELINQUENT_ACCOUNT: {"has_delinquent_plan": True},
    DeclineReason.VELOCITY_LIMIT: {"approvals_24h": 5},
    DeclineReason.INSUFFICIENT_CREDIT_LIMIT: {"open_principal": 95_000},
    DeclineReason.RISK_SCORE_TOO_HIGH: {"risk_probability": 0.9},
}


@pytest.mark.parametrize("reason", list(BREAK), ids=str)
def test_each_rule_declines_with_its_own_reason(reason: DeclineReason) -> None:
    assert reason_of(decide(facts(**BREAK[reason]), POLICY)) == reason


@pytest.mark.parametrize("first", range(len(BREAK)))
def test_the_first_failing_rule_wins(first: int) -> None:
    # Break rule `first` and every rule after it: the decline names rule `first`.
    rules = list(BREAK)
    changes: dict[str, Any] = {}
    for reason in rules[first:]:
        changes.update(BREAK[reason])
    assert reason_of(decide(facts(**changes), POLICY)) == rules[first]


@pytest.mark.parametrize("reason", list(BREAK)[:6], ids=str)
def test_a_rule_decline_is_scored_too_and_keeps_its_reason(reason: DeclineReason) -> None:
    calls: list[None] = []

    def model() -> float:
        calls.append(None)
        return 0.9  # above the cutoff: rule 7 would fail too, but the earlier rule wins

    outcome = decide(facts(**BREAK[reason], risk_probability=model), POLICY)
    assert reason_of(outcome) == reason
    assert outcome.risk_probability == 0.9
    assert len(calls) == 1


@pytest.mark.parametrize("reason", list(BREAK)[:6], ids=str)
def test_first_failing_rule_names_rules_1_to_6_without_a_score(reason: DeclineReason) -> None:
    def model() -> float:
        raise AssertionError("rules 1-6 need no score")

    assert first_failing_rule(facts(**BREAK[reason], risk_probability=model), POLICY) == reason


def test_first_failing_rule_ignores_the_score() -> None:
    assert first_failing_rule(facts(risk_probability=0.99), POLICY) is None


def test_the_model_is_run_once_when_rules_1_to_6_pass() -> None:
    calls: list[None] = []

    def model() -> float:
        calls.append(None)
        return 0.07

    outcome = decide(facts(risk_probability=model), POLICY)
    assert outcome.approved and outcome.risk_probability == 0.07
    assert len(calls) == 1


# 1. KYC


@pytest.mark.parametrize("status", ["pending", "rejected", "not_started", "", "VERIFIED"])
def test_kyc_other_than_verified_declines(status: str) -> None:
    assert reason_of(decide(facts(kyc_status=status), POLICY)) == "kyc_not_verified"


# 2. Age


@pytest.mark.parametrize(
    ("born", "on", "adult"),
    [
        (date(2008, 11, 25), date(2026, 11, 25), True),  # 18th birthday today
        (date(2008, 11, 26), date(2026, 11, 25), False),  # 18 tomorrow
        (date(2008, 11, 24), date(2026, 11, 25), True),
        # Born on 29 February: 18 on 1 March (18 years after a leap year is never one).
        (date(2008, 2, 29), date(2026, 2, 28), False),
        (date(2008, 2, 29), date(2026, 3, 1), True),
        (date(2004, 2, 29), date(2022, 2, 28), False),
        (date(2004, 2, 29), date(2022, 3, 1), True),
        (date(2030, 1, 1), date(2026, 11, 25), False),  # born after the decision date
        (date(1926, 11, 25), date(2026, 11, 25), True),
    ],
)
def test_underage_on_the_decision_date(born: date, on: date, adult: bool) -> None:
    outcome = decide(facts(date_of_birth=born, decision_date=on), POLICY)
    assert reason_of(outcome) == (None if adult else "underage")


def test_adulthood_date_of_a_leap_day_birthday() -> None:
    assert adulthood_date(date(2008, 2, 29)) == date(2026, 3, 1)
    assert adulthood_date(date(2000, 2, 29), years=24) == date(2024, 2, 29)
    assert adulthood_date(date(2000, 2, 29), years=20) == date(2020, 2, 29)


# 3. Amount range


@pytest.mark.parametrize(
    ("amount", "merchant_min", "merchant_max", "allowed"),
    [
        (1_000, None, None, True),  # the plan's minimum
        (999, None, None, False),  # one cent under
        (200_000, None, None, True),  # the plan's maximum
        (200_001, None, None, False),  # one cent over
        (5_000, 5_000, 50_000, True),  # the merchant's narrower minimum
        (4_999, 5_000, 50_000, False),
        (50_000, 5_000, 50_000, True),  # the merchant's narrower maximum
        (50_001, 5_000, 50_000, False),
        # A merchant range wider than the plan's does not widen it.
        (999, 500, 300_000, False),
        (200_001, 500, 300_000, False),
        (200_000, 500, 300_000, True),
        # A merchant range that excludes everything declines everything.
        (30_000, 60_000, 50_000, False),
    ],
)
def test_amount_must_be_in_the_plan_range_narrowed_by_the_merchant(
    amount: int, merchant_min: int | None, merchant_max: int | None, allowed: bool
) -> None:
    outcome = decide(
        facts(
            amount=amount,
            open_principal=0,
            credit_limit=1_000_000,
            merchant_min_amount=merchant_min,
            merchant_max_amount=merchant_max,
        ),
        POLICY,
    )
    assert reason_of(outcome) == (None if allowed else "amount_out_of_range")


def test_amount_range_is_the_intersection() -> None:
    assert amount_range(5_000, 1_000_000, None, None) == (5_000, 1_000_000)
    assert amount_range(5_000, 1_000_000, 1_000, 2_000_000) == (5_000, 1_000_000)
    assert amount_range(5_000, 1_000_000, 10_000, 500_000) == (10_000, 500_000)


# 4. Delinquency


def test_a_delinquent_or_charged_off_plan_declines() -> None:
    assert reason_of(decide(facts(has_delinquent_plan=True), POLICY)) == "delinquent_account"


# 5. Velocity


@pytest.mark.parametrize(("approvals", "allowed"), [(0, True), (4, True), (5, False), (9, False)])
def test_velocity_counts_the_checkout_being_decided(approvals: int, allowed: bool) -> None:
    # "More than 5 approved in 24 hours": with 5 already, this one would be the 6th.
    outcome = decide(facts(approvals_24h=approvals), POLICY)
    assert reason_of(outcome) == (None if allowed else "velocity_limit")


def test_velocity_limit_is_configurable() -> None:
    policy = CreditPolicy(risk_cutoff=0.2, max_approvals_24h=2)
    assert decide(facts(approvals_24h=1), policy).approved
    assert reason_of(decide(facts(approvals_24h=2), policy)) == "velocity_limit"
    assert CreditPolicy(risk_cutoff=0.2).max_approvals_24h == 5


# 6. Credit limit


@pytest.mark.parametrize(
    ("open_principal", "amount", "allowed"),
    [
        (60_000, 40_000, True),  # exactly at the limit
        (60_001, 40_000, False),  # one cent over
        (0, 100_000, True),
        (0, 100_001, False),
        (100_000, 1_000, False),
    ],
)
def test_open_principal_plus_amount_may_reach_but_not_exceed_the_limit(
    open_principal: int, amount: int, allowed: bool
) -> None:
    outcome = decide(
        facts(open_principal=open_principal, amount=amount, plan_max_amount=1_000_000), POLICY
    )
    assert reason_of(outcome) == (None if allowed else "insufficient_credit_limit")


@given(
    open_principal=st.integers(0, 10**9),
    amount=st.integers(1, 10**9),
    credit_limit=st.integers(0, 10**9),
)
def test_credit_limit_is_exact_integer_arithmetic(
    open_principal: int, amount: int, credit_limit: int
) -> None:
    outcome = decide(
        facts(
            open_principal=open_principal,
            amount=amount,
            credit_limit=credit_limit,
            plan_min_amount=1,
            plan_max_amount=10**9,
        ),
        POLICY,
    )
    over = open_principal + amount > credit_limit
    assert reason_of(outcome) == ("insufficient_credit_limit" if over else None)


# 7. Risk score


@pytest.mark.parametrize(
    ("probability", "allowed"), [(0.0, True), (0.2, True), (0.2000001, False), (1.0, False)]
)
def test_a_probability_above_the_cutoff_declines(probability: float, allowed: bool) -> None:
    outcome = decide(facts(risk_probability=probability), POLICY)
    assert reason_of(outcome) == (None if allowed else "risk_score_too_high")
    assert outcome.risk_probability == probability


@pytest.mark.parametrize("probability", [float("nan"), -0.01, 1.5])
def test_a_probability_that_is_not_one_fails_loudly(probability: float) -> None:
    with pytest.raises(ValueError):
        decide(facts(risk_probability=probability), POLICY)
    with pytest.raises(ValueError):
        decide(facts(risk_probability=lambda: probability), POLICY)


# Inputs


@pytest.mark.parametrize("cutoff", [-0.1, 1.1, float("nan")])
def test_policy_rejects_a_cutoff_that_is_not_a_probability(cutoff: float) -> None:
    with pytest.raises(ValueError):
        CreditPolicy(risk_cutoff=cutoff)


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 400.0},
        {"open_principal": 1.5},
        {"credit_limit": True},
        {"merchant_max_amount": 50_000.0},
        {"decision_date": datetime(2026, 11, 25, 12, 0)},  # noqa: DTZ001 - the point of the test
    ],
)
def test_money_must_be_ints_and_dates_dates(changes: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        facts(**changes)


@pytest.mark.parametrize("changes", [{"amount": 0}, {"open_principal": -1}, {"approvals_24h": -1}])
def test_negative_or_zero_inputs_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        facts(**changes)
