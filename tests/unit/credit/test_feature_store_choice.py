"""Where the credit features live (`BNPL_FEATURE_STORE`)."""

from __future__ import annotations

import pytest

from bnpl.config import Settings
from bnpl.credit import feature_store_kind

REDIS = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("choice", "redis_url", "kind"),
    [
        ("auto", None, "postgres"),
        ("auto", REDIS, "redis"),
        ("postgres", REDIS, "postgres"),  # bnpl up's own ephemeral Valkey
        ("redis", REDIS, "redis"),
    ],
)
def test_the_store_follows_the_setting(choice: str, redis_url: str | None, kind: str) -> None:
    assert feature_store_kind(Settings(feature_store=choice, redis_url=redis_url)) == kind


def test_redis_without_a_redis_url_is_refused() -> None:
    with pytest.raises(ValueError, match="BNPL_REDIS_URL"):
        feature_store_kind(Settings(feature_store="redis", redis_url=None))
