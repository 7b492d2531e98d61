"""Ledger: the double-entry journal every movement of money is written to.

The facade other contexts use:

- `post(conn, kind=..., reference_id=..., currency=..., lines=..., at=...)` writes one balanced
  entry in the caller's transaction (one round trip) and returns its `jrn_` id. It writes no
  audit record: the calling use case audits the money movement it makes.
- the recipes (`authorization`, `consumer_payment`, `capture`, `refund`, ...) build the lines
  of every posting the platform makes; `Account` is the chart (see `bnpl.ledger.domain`).
- `account_balance(conn, account, currency)` and `balances(conn)` read balances;
  `balances_by_reference(conn, account)` one account's balance per entry reference (checks).
- `register_check(name, check)` adds an invariant to `GET /v1/ledger/verify`.

Usage::

    from bnpl import ledger

    await ledger.post(
        conn, kind="checkout.captured", reference_id=checkout_id, currency="USD",
        lines=ledger.capture(captured=40_000, fee=1_626), at=now, merchant_id=merchant_id,
    )
"""

from bnpl.ledger.checks import (
    Check,
    CheckOutcome,
    CheckResult,
    Verification,
    register_check,
    registered_check,
    registered_checks,
    unregister_check,
    verify,
)
from bnpl.ledger.domain import (
    Account,
    AccountType,
    IdempotencyConflict,
    Line,
    PostingError,
    Side,
    apply_carried_over,
    authorization,
    cancellation,
    capture,
    carry_negative_net,
    charge_off,
    consumer_payment,
    credit,
    debit,
    gateway_sweep,
    interest_accrual,
    late_fee,
    payout_funding,
    recovery,
    refund,
    refund_of_written_off,
    release_authorization,
    settlement_payout,
    signed_balance,
    validate_entry,
    waiver,
    written_off_waiver,
)
from bnpl.ledger.service import (
    AccountBalance,
    Entry,
    EntryLine,
    Posting,
    account_balance,
    balances,
    balances_by_reference,
    entries,
    entry,
    post,
    post_many,
)

__all__ = [
    "Account",
    "AccountBalance",
    "AccountType",
    "Check",
    "CheckOutcome",
    "CheckResult",
    "Entry",
    "EntryLine",
    "IdempotencyConflict",
    "Line",
    "Posting",
    "PostingError",
    "Side",
    "Verification",
    "account_balance",
    "apply_carried_over",
    "authorization",
    "balances",
    "balances_by_reference",
    "cancellation",
    "capture",
    "carry_negative_net",
    "charge_off",
    "consumer_payment",
    "credit",
    "debit",
    "entries",
    "entry",
    "gateway_sweep",
    "interest_accrual",
    "late_fee",
    "payout_funding",
    "post",
    "post_many",
    "recovery",
    "refund",
    "refund_of_written_off",
    "register_check",
    "registered_check",
    "registered_checks",
    "release_authorization",
    "settlement_payout",
    "signed_balance",
    "unregister_check",
    "validate_entry",
    "verify",
    "waiver",
    "written_off_waiver",
]
