"""Publishable keys, pure: what one is and how it is made."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

KEY_BYTES: Final = 24  # not a secret; long enough that keys cannot be enumerated
MAX_KEY_LENGTH: Final = 100


@dataclass(frozen=True, slots=True)
class PublishableKey:
    id: str
    merchant_id: str
    key: str
    livemode: bool
    created_at: datetime
    revoked_at: datetime | None


def new_key(livemode: bool) -> str:
    return ("pk_live_" if livemode else "pk_test_") + secrets.token_urlsafe(KEY_BYTES)


def well_formed(key: str) -> bool:
    return key.startswith(("pk_test_", "pk_live_")) and len(key) <= MAX_KEY_LENGTH
