"""Credit accounts: limits, availability and the account opened on KYC verification."""

from __future__ import annotations

import pytest

from bnpl.credit import accounts
from bnpl.runtime import Runtime
from tests.support import Api, unique


async def test_no_account_means_no_credit(rt: Runtime) -> None:
    async with rt.db.connection() as conn:
        assert await accounts.credit_summary(conn, unique("cus_")) == (0, 0)


async def test_open_account_is_idempotent_and_keeps_a_set_limit(rt: Runtime) -> None:
    consumer_id, other = unique("cus_"), unique("cus_")
    async with rt.db.transaction() as conn:
        assert await accounts.open_account(conn, consumer_id) is True
        assert await accounts.open_account(conn, consumer_id) is False
        assert await accounts.credit_summary(conn, consumer_id) == (100_000, 100_000)
        await accounts.set_credit_limit(conn, other, 5_000)
        assert await accounts.open_account(conn, other) is False
        assert await accounts.credit_summary(conn, other) == (5_000, 5_000)


async def test_available_credit_is_limit_minus_open_principal_floored(rt: Runtime) -> None:
    consumer_id = unique("cus_")
    async with rt.db.transaction() as conn:
        await accounts.open_account(conn, consumer_id)
        await conn.execute(
            "UPDATE credit.accounts SET open_principal = 40000 WHERE consumer_id = $1",
            consumer_id,
        )
        assert await accounts.credit_summary(conn, consumer_id) == (100_000, 60_000)
        await accounts.set_credit_limit(conn, consumer_id, 30_000)
        assert await accounts.credit_summary(conn, consumer_id) == (30_000, 0)
        version = await conn.fetchval(
            "SELECT version FROM credit.accounts WHERE consumer_id = $1", consumer_id
        )
        assert version == 2


async def test_negative_limits_are_refused(rt: Runtime) -> None:
    async with rt.db.transaction() as conn:
        with pytest.raises(ValueError):
            await accounts.set_credit_limit(conn, unique("cus_"), -1)


async def test_credit_is_wired_into_the_runtime(api: Api, rt: Runtime) -> None:
    assert rt.hooks["credit_summary"] is accounts.credit_summary
    assert rt.hooks["set_credit_limit"] is accounts.set_credit_limit
    assert "credit.open_account" in rt.bus.subscriptions
    consumer = await api.consumer()
    async with rt.db.connection() as conn:
        assert await accounts.credit_summary(conn, consumer.id) == (100_000, 100_000)
