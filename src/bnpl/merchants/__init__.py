"""Merchants: profiles, commercial config, secret API keys (and later webhooks, settlements).

The public facade: other contexts import only what is re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from bnpl.merchants import handlers, service
from bnpl.merchants.domain import PLAN_RANGES, MerchantConfig, MerchantStatus
from bnpl.merchants.service import SettlementAccount

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

__all__ = [
    "PLAN_RANGES",
    "MerchantConfig",
    "MerchantStatus",
    "SettlementAccount",
    "merchant_config",
    "register",
    "settlement_account",
]


async def merchant_config(conn: asyncpg.Connection, merchant_id: str) -> MerchantConfig | None:
    """The terms a merchant sells on, or None if there is no such merchant.

    Read in the caller's transaction (no lock). Check `status == "active"` (or `is_active`)
    before selling for it; `amount_range(plan)` gives the amounts a plan may finance for this
    merchant (the plan's DOMAIN.md range narrowed by the merchant's), or None if the plan is
    disabled. Fees: `mdr_bps` and `fixed_fee` per capture; `monthly_apr_bps` for monthly plans.
    """
    return await service.merchant_config(conn, merchant_id)


async def settlement_account(
    conn: asyncpg.Connection, merchant_id: str, *, aes_key: bytes
) -> SettlementAccount | None:
    """The merchant's decrypted settlement account, for payouts only: never log or show it."""
    return await service.settlement_account(conn, merchant_id, aes_key=aes_key)


def register(rt: Runtime) -> None:
    """Subscribe merchants' consumers and provide the gateway's API-key resolver."""
    handlers.subscribe(rt)
    rt.resolvers.merchant_key = service.key_resolver(rt.db)
