"""Identity rules, pure (no I/O, no clock): password policy, KYC states, card checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "CardProblem",
    "KycStatus",
    "card_brand",
    "card_problems",
    "is_expired",
    "kyc_transition_allowed",
    "luhn_ok",
    "normalize_email",
    "password_problem",
]

MIN_PASSWORD_LENGTH: Final = 10
# Argon2 hashes any length, but an unbounded one is a cheap denial of service.
MAX_PASSWORD_LENGTH: Final = 1024
# A card that expires further out than this is a typo, not a card.
MAX_CARD_YEARS_AHEAD: Final = 25


class KycStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


def kyc_transition_allowed(current: KycStatus, new: KycStatus) -> bool:
    """KYC is decided once: `pending` -> `verified` | `rejected`, never back or across."""
    return current is KycStatus.PENDING and new is not KycStatus.PENDING


def normalize_email(email: str) -> str:
    """The form an email is compared in: trimmed and case-folded (the unique index agrees)."""
    return email.strip().lower()


def password_problem(password: str) -> str | None:
    """Why a password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must have at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must have at most {MAX_PASSWORD_LENGTH} characters."
    return None


# --- cards ------------------------------------------------------------------------------------


def luhn_ok(number: str) -> bool:
    """The Luhn (mod 10) check digit of a card number holds."""
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    """The card network from the number's prefix (IIN ranges), or `unknown`."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if len(number) >= 4 and (51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720):
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def is_expired(exp_month: int, exp_year: int, today: date) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)


@dataclass(frozen=True, slots=True)
class CardProblem:
    """One reason a card is refused; never carries the number or the CVC."""

    field: str
    message: str


def card_problems(
    number: str, exp_month: int, exp_year: int, cvc: str, today: date
) -> list[CardProblem]:
    """Everything wrong with a card before it is sent to the gateway (empty: looks valid)."""
    problems: list[CardProblem] = []
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19):
        problems.append(CardProblem("card.number", "The card number must be 12 to 19 digits."))
    elif not luhn_ok(number):
        problems.append(CardProblem("card.number", "The card number is not valid."))
    if not 1 <= exp_month <= 12:
        problems.append(CardProblem("card.exp_month", "The expiry month must be 1 to 12."))
    elif is_expired(exp_month, exp_year, today):
        problems.append(CardProblem("card.exp_year", "The card has expired."))
    elif exp_year > today.year + MAX_CARD_YEARS_AHEAD:
        problems.append(CardProblem("card.exp_year", "The expiry year is not valid."))
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) in (3, 4)):
        problems.append(CardProblem("card.cvc", "The CVC must be 3 or 4 digits."))
    return problems
