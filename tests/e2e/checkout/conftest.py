"""Fixtures of the checkout e2e tests: merchants shared by the package, the flow helper."""

from __future__ import annotations

import pytest

from tests.e2e.checkout.helpers import Flow
from tests.support import Api, MerchantHandle

APR_BPS = 1999


@pytest.fixture(scope="package")
def flow(api: Api) -> Flow:
    return Flow(api)


@pytest.fixture(scope="package")
async def shop(api: Api) -> MerchantHandle:
    """A merchant with the default config: every plan, 0 APR, 399 bps + 30."""
    return await api.active_merchant()


@pytest.fixture(scope="package")
async def apr_shop(api: Api) -> MerchantHandle:
    """A merchant whose monthly plans carry an APR of 19.99%."""
    return await api.active_merchant(config={"monthly_apr_bps": APR_BPS})


@pytest.fixture(scope="package")
async def other_shop(api: Api) -> MerchantHandle:
    return await api.active_merchant()
