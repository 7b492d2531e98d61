"""Merchants: profiles, commercial config, secret API keys, settlements and webhooks.

The public facade: other contexts import only what is re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from bnpl import ledger, messaging
from bnpl.merchants import bulk as bulk  # sandbox seeding only (POST /v1/sandbox/seed)
from bnpl.merchants import handlers, service
from bnpl.merchants.domain import PLAN_RANGES, MerchantConfig, MerchantStatus
from bnpl.merchants.publishable import repository as publishable_keys
from bnpl.merchants.publishable.domain import well_formed as _publishable_key_well_formed
from bnpl.merchants.service import SettlementAccount
from bnpl.merchants.settlements import repository as settlements
from bnpl.merchants.settlements.service import PayOutSettlements, SettleDays
from bnpl.merchants.webhooks.service import DeliverWebhooks

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

__all__ = [
    "PLAN_RANGES",
    "MerchantConfig",
    "MerchantStatus",
    "SettlementAccount",
    "merchant_config",
    "publishable_key_merchant",
    "register",
    "settled_out",
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


async def publishable_key_merchant(conn: asyncpg.Connection, key: str) -> str | None:
    """The active merchant whose live publishable key (`pk_test_...`) this is, or None. A
    publishable key only ever reads offers: it is no credential of the gateway."""
    if not _publishable_key_well_formed(key):
        return None
    return await publishable_keys.resolve(conn, key)


async def settlement_account(
    conn: asyncpg.Connection, merchant_id: str, *, aes_key: bytes
) -> SettlementAccount | None:
    """The merchant's decrypted settlement account, for payouts only: never log or show it."""
    return await service.settlement_account(conn, merchant_id, aes_key=aes_key)


async def settled_out(conn: asyncpg.Connection) -> dict[str, int]:
    """Per currency, what settlements have moved out of merchant_payable in the ledger (paid
    out, and shortfalls netted, less shortfalls carried over): merchant_payable is what
    checkouts put in (captured - refunded - fees) less this."""
    return await settlements.settled_out(conn)


async def _settlement_items_complete(conn: asyncpg.Connection) -> ledger.CheckResult:
    """No capture, fee or refund is missing from settlement: the consumer that records them
    gave up on no event (one it gave up on would leave money unpaid to its merchant)."""
    lost = await messaging.dead_letters(conn, handlers.RECORD_SETTLEMENT_ITEMS)
    if lost:
        return ledger.CheckResult(
            False, f"{lost} checkout events never reached settlement (messaging.dead_letters)"
        )
    return ledger.CheckResult(True, "every capture, fee and refund reached settlement")


def register(rt: Runtime) -> None:
    """Subscribe merchants' consumers, register the settlement runs and the webhook sender,
    and provide the gateway's API-key resolver."""
    handlers.subscribe(rt)
    rt.scheduler.register(SettleDays())
    rt.scheduler.register(PayOutSettlements(rt))
    rt.scheduler.register(DeliverWebhooks(rt))
    ledger.register_check("merchants.settlement_items", _settlement_items_complete)
    rt.resolvers.merchant_key = service.key_resolver(rt.db)
