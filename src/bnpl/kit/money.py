"""Money as an integer count of minor units plus an ISO 4217 code; never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Final

# All supported currencies have two decimals (DOMAIN.md).
SUPPORTED_CURRENCIES: Final = frozenset({"USD", "EUR", "GBP", "CAD", "AUD"})
MAX_AMOUNT: Final = 10**12  # a sanity bound on any single amount, far above any plan


class CurrencyMismatch(ValueError):
    """Two amounts of different currencies were combined."""


def round_half_up(value: Fraction | Decimal | int) -> int:
    """Round an exact rational to the nearest integer, halves away from zero.

    Symmetric, like `Decimal`'s ROUND_HALF_UP, so `round_half_up(-x) == -round_half_up(x)`
    and a reversal rounds exactly like the amount it reverses.
    """
    if isinstance(value, int):
        return value
    if isinstance(value, Fraction):
        if value < 0:
            return -round_half_up(-value)
        q, r = divmod(value.numerator, value.denominator)
        return q + 1 if 2 * r >= value.denominator else q
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def basis_points_of(amount: int, bps: int) -> int:
    """`round_half_up(amount * bps / 10000)` in exact integer arithmetic."""
    return round_half_up(Fraction(amount * bps, 10_000))


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("money amounts are integers of minor units")
        if self.currency not in SUPPORTED_CURRENCIES:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented  # Money + 5 is a TypeError, not an AttributeError
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def is_zero(self) -> bool:
        return self.amount == 0

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)
