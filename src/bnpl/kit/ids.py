"""Public ids: a type prefix and a time-ordered UUIDv7, e.g. `chk_01JD...`.

The suffix is the UUIDv7 in Crockford base32 (26 characters), so ids sort by creation time
both as strings and in a B-tree index.
"""

from __future__ import annotations

from typing import Final

import uuid_utils

PREFIXES: Final = frozenset(
    {
        "mer",
        "key",
        "cus",
        "pm",
        "chk",
        "dec",
        "pln",
        "pay",
        "ref",
        "evt",
        "ntf",
        "whe",
        "whd",
        "stl",
        "aud",
        "ses",
        "kyc",
        "kyb",
        "app",
        "ins",
        "att",
        "jrn",
        "tok",
        "ch",
        "rfd",
        "itm",
        "req",
    }
)
_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of digits, by the 10 bits it stands for: 13 lookups make an id's 26 digits.
_PAIRS: Final = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_SHIFTS: Final = tuple(range(120, -1, -10))


def _b32(value: int) -> str:
    """The 26 Crockford base32 digits of a 128-bit value, most significant first."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    """A new public id with the given type prefix."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{_b32(uuid_utils.uuid7().int)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
