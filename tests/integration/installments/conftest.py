"""Fixtures of the installments integration tests.

These tests call the installments facade below the money-movement layer (plans, payments
and refunds applied without the ledger entries checkout and collections post with them), so
they run on a platform of their own: the shared database's ledger must keep verifying.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bnpl.config import Settings
from bnpl.runtime import Runtime
from tests.conftest import isolated_platform
from tests.integration.installments.helpers import Parties
from tests.support import Api


@pytest.fixture(scope="package")
async def api(postgres_server: str, settings: Settings) -> AsyncIterator[Api]:
    async with isolated_platform(postgres_server, settings) as own:
        yield own


@pytest.fixture(scope="package")
def rt(api: Api) -> Runtime:
    return api.rt


@pytest.fixture(scope="package")
def client(api: Api) -> httpx.AsyncClient:
    return api.client


@pytest.fixture(scope="package")
async def parties(api: Api) -> Parties:
    return Parties(
        merchant=await api.active_merchant(),
        other_merchant=await api.active_merchant(),
        consumer=await api.consumer(),
        other_consumer=await api.consumer(),
    )
