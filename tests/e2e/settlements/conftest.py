"""Fixtures of the settlement scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bnpl.config import Settings
from tests.conftest import isolated_platform
from tests.support import Api


@pytest.fixture(scope="module")
async def quiet_api(postgres_server: str, settings: Settings) -> AsyncIterator[Api]:
    """A platform of its own whose scheduler never ticks by itself: settlements and payouts
    run only when a test moves the clock, at the due times on the way."""
    async with isolated_platform(postgres_server, settings, scheduler_interval_s=3600.0) as api:
        yield api
