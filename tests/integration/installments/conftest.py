"""Fixtures of the installments integration tests."""

from __future__ import annotations

import pytest

from tests.integration.installments.helpers import Parties
from tests.support import Api


@pytest.fixture(scope="session")
async def parties(api: Api) -> Parties:
    return Parties(
        merchant=await api.active_merchant(),
        other_merchant=await api.active_merchant(),
        consumer=await api.consumer(),
        other_consumer=await api.consumer(),
    )
