"""Public ids: a type prefix and a time-ordered UUIDv7, e.g. `chk_01JD...`.

The suffix is the UUIDv7 in Crockford base32 (26 characters), so ids sort by creation time
both as strings and in a B-tree index.
"""

from __future__ import annotations

import base64
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
# RFC 4648 base32 digits -> Crockford's: the standard encoder does the arithmetic in C.
_TO_CROCKFORD: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def _b32(value: int) -> str:
    """The 26 Crockford base32 digits of a 128-bit value, most significant first."""
    # 20 bytes are 32 digits; the value's 26 are the last ones (it is below 2**130).
    digits = base64.b32encode(value.to_bytes(20, "big"))[6:]
    return digits.translate(_TO_CROCKFORD).decode()


def new_id(prefix: str) -> str:
    """A new public id with the given type prefix."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{_b32(uuid_utils.uuid7().int)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
