"""The gateway simulator's test cards (API.md, "Sandbox")."""

from __future__ import annotations

from enum import StrEnum


class Behaviour(StrEnum):
    SUCCEED = "succeed"
    HARD_DECLINE = "hard_decline"  # card_declined
    SOFT_DECLINE = "soft_decline"  # insufficient_funds
    FIRST_ONLY = "first_only"  # first charge succeeds, later ones insufficient_funds
    FLAKY = "flaky"  # processing_error (HTTP 500) twice per charge, then success
    TIMEOUT_ONCE = "timeout_once"  # first attempt captured but never answered


TEST_CARDS: dict[str, Behaviour] = {
    "4242424242424242": Behaviour.SUCCEED,
    "4000000000000002": Behaviour.HARD_DECLINE,
    "4000000000009995": Behaviour.SOFT_DECLINE,
    "4000000000000341": Behaviour.FIRST_ONLY,
    "4000000000000119": Behaviour.FLAKY,
    "4000000000006975": Behaviour.TIMEOUT_ONCE,
}


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


# Test bank accounts of the payout simulator, by their last four digits; any other account
# is paid.
CLOSED_ACCOUNT = "0002"  # every payout refused: account_closed
FLAKY_ACCOUNT = "0119"  # processing_error (HTTP 500) twice per payout, then paid

# The SMS simulator refuses numbers that end so (invalid_number); it delivers every other.
UNREACHABLE_NUMBER = "0000"
