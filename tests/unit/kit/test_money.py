from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnpl.kit.money import (
    SUPPORTED_CURRENCIES,
    CurrencyMismatch,
    Money,
    basis_points_of,
    round_half_up,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),  # not banker's rounding
        (Fraction(49, 100), 0),
        (Fraction(51, 100), 1),
        (Fraction(1999, 1000), 2),
        (Fraction(-1, 2), -1),  # halves go away from zero on both sides
        (Fraction(-5, 2), -3),
        (Fraction(-49, 100), 0),
        (Decimal("0.5"), 1),
        (Decimal("2.5"), 3),
        (Decimal("2.4999999999"), 2),
        (Decimal("-2.5"), -3),
        (7, 7),
        (0, 0),
    ],
)
def test_round_half_up(value: Fraction | Decimal | int, expected: int) -> None:
    assert round_half_up(value) == expected
    assert isinstance(round_half_up(value), int)


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_round_half_up_agrees_for_fractions_and_decimals(num: int, den: int) -> None:
    exact = Fraction(num, den)
    rounded = round_half_up(exact)
    assert abs(exact - rounded) <= Fraction(1, 2)
    assert round_half_up(-exact) == -rounded
    if den in (1, 2, 4, 5, 8, 10, 100, 1000, 10_000):  # exactly representable as decimals
        decimal = Decimal(num) / Decimal(den)
        assert round_half_up(decimal) == rounded


@pytest.mark.parametrize(
    ("amount", "bps", "expected"),
    [
        (40000, 399, 1596),  # exact
        (12345, 399, 493),  # 492.5655
        (50, 399, 2),  # 1.995
        (5, 1000, 1),  # 0.5 goes up
        (15, 1000, 2),  # 1.5 goes up
        (25, 1000, 3),  # 2.5 goes up (not to even)
        (4, 1000, 0),  # 0.4
        (0, 399, 0),
        (10**12, 10_000, 10**12),
        (-5, 1000, -1),
    ],
)
def test_basis_points_of(amount: int, bps: int, expected: int) -> None:
    assert basis_points_of(amount, bps) == expected


@given(st.integers(0, 10**12), st.integers(0, 10_000))
def test_basis_points_of_is_exact(amount: int, bps: int) -> None:
    assert basis_points_of(amount, bps) == (amount * bps * 2 + 10_000) // 20_000


def test_money_is_integer_minor_units_only() -> None:
    for bad in (10.0, 10.5, Decimal("10"), Fraction(10), "10", True, None):
        with pytest.raises(TypeError):
            Money(bad, "USD")  # type: ignore[arg-type]
    assert Money(-5, "USD").amount == -5


def test_money_currency_must_be_supported() -> None:
    assert {"USD", "EUR", "GBP", "CAD", "AUD"} == SUPPORTED_CURRENCIES
    for bad in ("usd", "JPY", "", "USDX"):
        with pytest.raises(ValueError):
            Money(100, bad)


def test_money_arithmetic() -> None:
    a, b = Money(1000, "USD"), Money(250, "USD")
    assert a + b == Money(1250, "USD")
    assert a - b == Money(750, "USD")
    assert -a == Money(-1000, "USD")
    assert Money.zero("EUR") == Money(0, "EUR") and Money.zero("EUR").is_zero()
    assert not a.is_zero()
    with pytest.raises(CurrencyMismatch):
        _ = a + Money(1, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = a - Money(1, "GBP")
    with pytest.raises(TypeError):
        _ = a + 5  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = a - 0.5  # type: ignore[operator]


def test_money_is_immutable_and_hashable() -> None:
    a = Money(1, "USD")
    with pytest.raises(AttributeError):
        a.amount = 2  # type: ignore[misc]
    assert len({a, Money(1, "USD"), Money(1, "EUR")}) == 2
