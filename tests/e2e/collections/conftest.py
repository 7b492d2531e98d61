"""Fixtures of the collection scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bnpl.config import Settings
from tests.conftest import isolated_platform
from tests.support import Api


@pytest.fixture(scope="module")
async def iso_api(postgres_server: str, settings: Settings) -> AsyncIterator[Api]:
    """One isolated platform per module, as the suite's `iso_api`, but its scheduler does not
    tick in the background: due work runs only when a test moves the clock, so nothing races
    with what a test does in between (a new card's immediate collection, above all)."""
    async with isolated_platform(postgres_server, settings, scheduler_interval_s=3600.0) as api:
        yield api
