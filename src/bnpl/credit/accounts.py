"""Credit accounts: each consumer's credit limit and the open principal counted against it.

All SQL of `credit.accounts`. An account opens with the default limit when the consumer's KYC
is verified (`credit.open_account`); before that a consumer has no account and no credit.
Operators can set a limit at any time (which opens the account if needed). Later, the credit
decision locks the account row (`FOR UPDATE`) to check and raise `open_principal`, so
simultaneous confirms can never push exposure over the limit.
"""

from __future__ import annotations

from typing import Final

import asyncpg

DEFAULT_CREDIT_LIMIT: Final = 100_000  # minor units (DOMAIN.md)


async def credit_summary(conn: asyncpg.Connection, consumer_id: str) -> tuple[int, int]:
    """`(credit_limit, available_credit)`; available is `max(0, limit - open_principal)`.

    A consumer without an account (KYC not verified yet) has `(0, 0)`.
    """
    row = await conn.fetchrow(
        "SELECT credit_limit, open_principal FROM credit.accounts WHERE consumer_id = $1",
        consumer_id,
    )
    if row is None:
        return 0, 0
    limit, open_principal = int(row["credit_limit"]), int(row["open_principal"])
    return limit, max(0, limit - open_principal)


async def set_credit_limit(conn: asyncpg.Connection, consumer_id: str, amount: int) -> None:
    """Set a consumer's credit limit (minor units, >= 0), opening the account if needed.

    Lowering it below the open principal is allowed: nothing already lent is recalled, the
    consumer just has no available credit until it is repaid.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError("a credit limit is a non-negative integer of minor units")
    await conn.execute(
        """
        INSERT INTO credit.accounts (consumer_id, credit_limit) VALUES ($1, $2)
        ON CONFLICT (consumer_id) DO UPDATE
        SET credit_limit = EXCLUDED.credit_limit, version = credit.accounts.version + 1,
            updated_at = now()
        """,
        consumer_id,
        amount,
    )


async def open_account(
    conn: asyncpg.Connection, consumer_id: str, default_limit: int = DEFAULT_CREDIT_LIMIT
) -> bool:
    """Open a consumer's account with `default_limit`; True if it was opened now.

    Idempotent: an existing account (e.g. a limit an operator already set) is left as it is.
    """
    opened = await conn.fetchval(
        """
        INSERT INTO credit.accounts (consumer_id, credit_limit) VALUES ($1, $2)
        ON CONFLICT (consumer_id) DO NOTHING
        RETURNING true
        """,
        consumer_id,
        default_limit,
    )
    return bool(opened)
