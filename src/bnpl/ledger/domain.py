"""Pure ledger logic: the chart of accounts, journal lines, entry validation, posting recipes.

No I/O here. Amounts are ``int`` minor units, always positive on a line; the side says which
way the line moves its account. An entry is balanced when its debits equal its credits, in
one currency.

Chart of accounts
-----------------

Balances are reported signed by the account's *normal side*: a debit-normal account's balance
is ``debits - credits``, a credit-normal account's is ``credits - debits``. A positive balance
is therefore the "natural" one (money owed to us on an asset, owed by us on a liability, earned
on a revenue account).

==================== ============== ====== =========================================================
account              type           normal when it moves
==================== ============== ====== =========================================================
consumer_receivable  asset          debit  Dr: a plan is authorized (its whole principal is owed).
                                           Cr: principal is paid (down payment, installment,
                                           prepayment), reduced by a refund or released part of an
                                           authorization, or written off at charge-off.
                                           Balance = unpaid principal of open plans.
interest_receivable  asset          debit  Dr: an installment's interest falls due (accrual).
                                           Cr: that interest is paid, waived (installment canceled
                                           by a refund) or written off. Balance = due, unpaid
                                           interest.
fees_receivable      asset          debit  Dr: a late fee is charged. Cr: the fee is paid, waived or
                                           written off. Balance = unpaid late fees.
merchant_receivable  asset          debit  Dr: a merchant's settlement nets negative and the
                                           shortfall is carried over. Cr: the carried amount is
                                           netted in a later settlement. Balance = what merchants
                                           owe us.
gateway_clearing     asset          debit  Dr: a consumer payment is collected through the card
                                           gateway. Cr: money is paid back to a consumer's card
                                           (refund above the unpaid principal), or the gateway
                                           remits its collected funds to our bank (sweep).
                                           Balance = funds held at the gateway.
payouts_clearing     asset          debit  Cr: a settlement payout is sent to a merchant.
                                           Dr: treasury funds the payout provider from our bank.
                                           A credit balance = payouts sent, not yet funded.
operating_cash       asset          debit  Dr: a gateway sweep arrives. Cr: a payout is funded. A
                                           negative balance is the lender's own capital financing
                                           the book (funding and equity are outside this ledger).
merchant_authorized  liability      credit Cr: a plan is authorized (we owe the merchant the
                                           purchase once captured). Dr: captured (moves to
                                           merchant_payable), or released (partial capture
                                           remainder, void, authorization expiry). Balance =
                                           approved purchases not yet captured.
merchant_payable     liability      credit Cr: a capture. Dr: the capture's fee, a refund after
                                           capture, a settlement payout. Cr again when a negative
                                           net is moved to merchant_receivable. Balance = captured,
                                           not yet settled, net of refunds and fees.
fee_revenue          revenue        credit Cr: the merchant fee of a capture (MDR + fixed fee).
                                           Never debited: fees are not returned on refunds.
interest_revenue     revenue        credit Cr: an installment's interest falls due (accrual).
                                           Dr: interest the consumer paid is returned (a void
                                           or an expired authorization cancels the plan).
late_fee_revenue     revenue        credit Cr: a late fee is charged. Dr: returned (same).
waived_interest      contra-revenue debit  Dr: due interest is waived (its installment is canceled
                                           by a refund).
waived_fees          contra-revenue debit  Dr: an unpaid late fee is waived (same).
bad_debt_expense     expense        debit  Dr: a plan is charged off (its receivables written off).
                                           Cr: money recovered on a charged-off plan.
==================== ============== ====== =========================================================

Interest is booked as receivable only when an installment falls due (never for future
installments), so a prepayment, a refund or a charge-off never has future interest to undo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from bnpl.kit.money import MAX_AMOUNT, SUPPORTED_CURRENCIES

__all__ = [
    "Account",
    "AccountType",
    "IdempotencyConflict",
    "Line",
    "PostingError",
    "Side",
    "apply_carried_over",
    "authorization",
    "cancellation",
    "capture",
    "carry_negative_net",
    "charge_off",
    "consumer_payment",
    "credit",
    "debit",
    "gateway_sweep",
    "interest_accrual",
    "late_fee",
    "net_by_account",
    "payout_funding",
    "recovery",
    "refund",
    "release_authorization",
    "settlement_payout",
    "signed_balance",
    "validate_entry",
    "waiver",
]

MAX_LINES: Final = 64  # far above any recipe; a bound on what one entry may carry


class PostingError(ValueError):
    """An entry or line that the ledger refuses (unbalanced, bad amount, bad currency...)."""


class IdempotencyConflict(PostingError):
    """An idempotency key was replayed with a different entry than the one it first wrote."""


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    CONTRA_REVENUE = "contra_revenue"
    EXPENSE = "expense"

    @property
    def normal_side(self) -> Side:
        return _NORMAL_SIDE[self]


_NORMAL_SIDE: Final = {
    AccountType.ASSET: Side.DEBIT,
    AccountType.EXPENSE: Side.DEBIT,
    AccountType.CONTRA_REVENUE: Side.DEBIT,
    AccountType.LIABILITY: Side.CREDIT,
    AccountType.REVENUE: Side.CREDIT,
}


class Account(StrEnum):
    """The chart of accounts (see the module docstring for when each one moves)."""

    CONSUMER_RECEIVABLE = "consumer_receivable"
    INTEREST_RECEIVABLE = "interest_receivable"
    FEES_RECEIVABLE = "fees_receivable"
    MERCHANT_RECEIVABLE = "merchant_receivable"
    GATEWAY_CLEARING = "gateway_clearing"
    PAYOUTS_CLEARING = "payouts_clearing"
    OPERATING_CASH = "operating_cash"
    MERCHANT_AUTHORIZED = "merchant_authorized"
    MERCHANT_PAYABLE = "merchant_payable"
    FEE_REVENUE = "fee_revenue"
    INTEREST_REVENUE = "interest_revenue"
    LATE_FEE_REVENUE = "late_fee_revenue"
    WAIVED_INTEREST = "waived_interest"
    WAIVED_FEES = "waived_fees"
    BAD_DEBT_EXPENSE = "bad_debt_expense"

    @property
    def account_type(self) -> AccountType:
        return _ACCOUNT_TYPE[self]

    @property
    def normal_side(self) -> Side:
        return _ACCOUNT_TYPE[self].normal_side


_ACCOUNT_TYPE: Final = {
    Account.CONSUMER_RECEIVABLE: AccountType.ASSET,
    Account.INTEREST_RECEIVABLE: AccountType.ASSET,
    Account.FEES_RECEIVABLE: AccountType.ASSET,
    Account.MERCHANT_RECEIVABLE: AccountType.ASSET,
    Account.GATEWAY_CLEARING: AccountType.ASSET,
    Account.PAYOUTS_CLEARING: AccountType.ASSET,
    Account.OPERATING_CASH: AccountType.ASSET,
    Account.MERCHANT_AUTHORIZED: AccountType.LIABILITY,
    Account.MERCHANT_PAYABLE: AccountType.LIABILITY,
    Account.FEE_REVENUE: AccountType.REVENUE,
    Account.INTEREST_REVENUE: AccountType.REVENUE,
    Account.LATE_FEE_REVENUE: AccountType.REVENUE,
    Account.WAIVED_INTEREST: AccountType.CONTRA_REVENUE,
    Account.WAIVED_FEES: AccountType.CONTRA_REVENUE,
    Account.BAD_DEBT_EXPENSE: AccountType.EXPENSE,
}


_CHART_ORDER: Final = {account: i for i, account in enumerate(Account)}


def signed_balance(account: Account, debits: int, credits: int) -> int:
    """The balance of ``account`` signed by its normal side (positive = natural balance)."""
    if account.normal_side is Side.DEBIT:
        return debits - credits
    return credits - debits


def _check_amount(amount: object, what: str) -> int:
    # bool is an int subclass and float/Decimal are never money: only a real int passes.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise PostingError(f"{what} must be an int of minor units, got {type(amount).__name__}")
    if amount <= 0:
        raise PostingError(f"{what} must be positive, got {amount}")
    if amount > MAX_AMOUNT:
        raise PostingError(f"{what} is beyond the sanity bound of {MAX_AMOUNT}")
    return amount


_ACCOUNTS: Final[dict[object, Account]] = {a.value: a for a in Account}
_SIDES: Final[dict[object, Side]] = {s.value: s for s in Side}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a journal entry: ``amount`` (> 0) on one ``side`` of one ``account``.

    ``currency`` is optional: a line that names one must match its entry's currency (it lets a
    caller that assembles lines from amounts of several sources have the ledger catch a mix).
    Strings are accepted for ``account`` and ``side`` and converted (unknown ones raise).
    """

    account: Account
    side: Side
    amount: int
    currency: str | None = None

    def __post_init__(self) -> None:
        try:  # by dict (members and their values alike): every posting builds lines
            account = _ACCOUNTS[self.account]
        except (KeyError, TypeError):
            raise PostingError(f"unknown account {self.account!r}") from None
        try:
            side = _SIDES[self.side]
        except (KeyError, TypeError):
            raise PostingError(f"side must be 'debit' or 'credit', got {self.side!r}") from None
        _check_amount(self.amount, f"amount of the {account} line")
        if self.currency is not None and self.currency not in SUPPORTED_CURRENCIES:
            raise PostingError(f"unsupported currency {self.currency!r}")
        if account is not self.account:
            object.__setattr__(self, "account", account)
        if side is not self.side:
            object.__setattr__(self, "side", side)


def debit(account: Account, amount: int) -> Line:
    return Line(account, Side.DEBIT, amount)


def credit(account: Account, amount: int) -> Line:
    return Line(account, Side.CREDIT, amount)


def validate_entry(currency: str, lines: Sequence[Line]) -> int:
    """Check one entry; returns its total (debits = credits). Raises `PostingError`."""
    if not isinstance(currency, str) or currency not in SUPPORTED_CURRENCIES:
        raise PostingError(
            f"currency must be one of {', '.join(sorted(SUPPORTED_CURRENCIES))}, got {currency!r}"
        )
    if not lines:
        raise PostingError("an entry needs lines")
    if len(lines) > MAX_LINES:
        raise PostingError(f"an entry carries at most {MAX_LINES} lines")
    debits = credits = 0
    for line in lines:
        if not isinstance(line, Line):
            raise PostingError(f"lines must be Line values, got {type(line).__name__}")
        # Re-checked here: a Line can be forged past __post_init__ (object.__setattr__).
        amount = _check_amount(line.amount, f"amount of the {line.account} line")
        if line.currency is not None and line.currency != currency:
            raise PostingError(f"mixed currencies: a {line.currency} line in a {currency} entry")
        if line.side is Side.DEBIT:
            debits += amount
        elif line.side is Side.CREDIT:
            credits += amount
        else:
            raise PostingError(f"bad side {line.side!r}")
    if debits != credits:
        raise PostingError(f"unbalanced entry: debits {debits} != credits {credits}")
    return debits


def net_by_account(lines: Iterable[Line]) -> dict[Account, tuple[int, int]]:
    """(debits, credits) per account, in the chart's order."""
    totals: dict[Account, list[int]] = {}
    for line in lines:
        pair = totals.setdefault(line.account, [0, 0])
        pair[0 if line.side is Side.DEBIT else 1] += line.amount
    return {a: (t[0], t[1]) for a, t in sorted(totals.items(), key=lambda i: _CHART_ORDER[i[0]])}


# --------------------------------------------------------------------------- recipes
#
# Each recipe returns the lines of one entry. Parts that may legitimately be zero (the interest
# of a pay_in_4 payment, the refunded-to-consumer part of a refund) are left out when zero; a
# negative part, a float or a zero total raises `PostingError`. Suggested `kind`s in brackets.


def _part(amount: int, what: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise PostingError(f"{what} must be an int of minor units, got {type(amount).__name__}")
    if amount < 0:
        raise PostingError(f"{what} must not be negative, got {amount}")
    return amount


def _split(
    total_side: Side, total_account: Account, parts: Sequence[tuple[Account, int, str]]
) -> list[Line]:
    """One line for the total on one side, one line per non-zero part on the other."""
    amounts = [(account, _part(amount, what)) for account, amount, what in parts]
    total = sum(amount for _, amount in amounts)
    if total == 0:
        raise PostingError("nothing to post: every part is zero")
    other = Side.CREDIT if total_side is Side.DEBIT else Side.DEBIT
    return [
        Line(total_account, total_side, total),
        *(Line(account, other, amount) for account, amount in amounts if amount),
    ]


def authorization(principal: int) -> list[Line]:
    """A plan of ``principal`` is authorized [plan.authorized].

    Dr consumer_receivable P / Cr merchant_authorized P.
    """
    amount = _check_amount(principal, "principal")
    return [debit(Account.CONSUMER_RECEIVABLE, amount), credit(Account.MERCHANT_AUTHORIZED, amount)]


def consumer_payment(*, principal: int = 0, interest: int = 0, fees: int = 0) -> list[Line]:
    """A consumer payment (down payment, installment, prepayment) collected [payment.succeeded].

    Dr gateway_clearing (principal + interest + fees) / Cr consumer_receivable principal,
    Cr interest_receivable interest, Cr fees_receivable fees. The interest must have been
    accrued (`interest_accrual`) and the fees charged (`late_fee`) before, in this transaction
    or earlier.
    """
    return _split(
        Side.DEBIT,
        Account.GATEWAY_CLEARING,
        [
            (Account.CONSUMER_RECEIVABLE, principal, "principal"),
            (Account.INTEREST_RECEIVABLE, interest, "interest"),
            (Account.FEES_RECEIVABLE, fees, "fees"),
        ],
    )


def interest_accrual(interest: int) -> list[Line]:
    """An installment's interest falls due [interest.accrued].

    Dr interest_receivable / Cr interest_revenue.
    """
    amount = _check_amount(interest, "interest")
    return [debit(Account.INTEREST_RECEIVABLE, amount), credit(Account.INTEREST_REVENUE, amount)]


def late_fee(fee: int) -> list[Line]:
    """A late fee is charged on an installment [installment.late_fee_charged].

    Dr fees_receivable / Cr late_fee_revenue.
    """
    amount = _check_amount(fee, "fee")
    return [debit(Account.FEES_RECEIVABLE, amount), credit(Account.LATE_FEE_REVENUE, amount)]


def capture(*, captured: int, fee: int) -> list[Line]:
    """A capture of ``captured`` costing the merchant ``fee`` [checkout.captured].

    Dr merchant_authorized C / Cr merchant_payable C; Dr merchant_payable F / Cr fee_revenue F.
    Kept gross (four lines, not netted) so the fee is visible in the journal. A partial capture
    first releases the remainder (`release_authorization`).
    """
    amount = _check_amount(captured, "captured")
    lines = [debit(Account.MERCHANT_AUTHORIZED, amount), credit(Account.MERCHANT_PAYABLE, amount)]
    if _part(fee, "fee"):
        lines += [debit(Account.MERCHANT_PAYABLE, fee), credit(Account.FEE_REVENUE, fee)]
    return lines


def _give_back(source: Account, applied_to_plan: int, refunded_to_consumer: int) -> list[Line]:
    return _split(
        Side.DEBIT,
        source,
        [
            (Account.CONSUMER_RECEIVABLE, applied_to_plan, "applied_to_plan"),
            (Account.GATEWAY_CLEARING, refunded_to_consumer, "refunded_to_consumer"),
        ],
    )


def release_authorization(*, applied_to_plan: int, refunded_to_consumer: int) -> list[Line]:
    """Before capture: the uncaptured remainder of a partial capture, a void or an expiry
    [authorization.released].

    R = A + B, allocated as DOMAIN.md "Refund allocation" says: Dr merchant_authorized R /
    Cr consumer_receivable A (unpaid principal reduced), Cr gateway_clearing B (paid back to
    the consumer's card).
    """
    return _give_back(Account.MERCHANT_AUTHORIZED, applied_to_plan, refunded_to_consumer)


def cancellation(
    *, released_principal: int, paid_principal: int, paid_interest: int = 0, paid_fees: int = 0
) -> list[Line]:
    """Before capture: a void or an expired authorization cancels the plan, and everything
    the consumer paid on it goes back to the card [checkout.voided, checkout.expired].

    The merchant's whole authorization is released: Dr merchant_authorized (released +
    paid principal) / Cr consumer_receivable released (the unpaid principal), Cr
    gateway_clearing the paid principal. Interest and late fees the consumer paid are
    returned too, as reversals of what they earned: Dr interest_revenue, Dr late_fee_revenue
    / Cr gateway_clearing.
    """
    lines = release_authorization(
        applied_to_plan=released_principal, refunded_to_consumer=paid_principal
    )
    returned = _part(paid_interest, "paid_interest") + _part(paid_fees, "paid_fees")
    if returned:
        lines += [
            Line(account, Side.DEBIT, amount)
            for account, amount in (
                (Account.INTEREST_REVENUE, paid_interest),
                (Account.LATE_FEE_REVENUE, paid_fees),
            )
            if amount
        ]
        lines.append(credit(Account.GATEWAY_CLEARING, returned))
    return lines


def refund(*, applied_to_plan: int, refunded_to_consumer: int) -> list[Line]:
    """After capture: a merchant refund of R = A + B [checkout.refunded].

    Dr merchant_payable R / Cr consumer_receivable A, Cr gateway_clearing B. The capture fee is
    not returned.
    """
    return _give_back(Account.MERCHANT_PAYABLE, applied_to_plan, refunded_to_consumer)


def refund_of_written_off(
    *, applied_to_plan: int, refunded_to_consumer: int, before_capture: bool = False
) -> list[Line]:
    """A refund (or release) of R = A + B on a charged-off plan [checkout.refunded].

    The charge-off wrote the receivable off, so the part applied to the plan recovers
    written-off debt: Dr merchant_payable R (merchant_authorized before capture) /
    Cr bad_debt_expense A, Cr gateway_clearing B.
    """
    source = Account.MERCHANT_AUTHORIZED if before_capture else Account.MERCHANT_PAYABLE
    return _split(
        Side.DEBIT,
        source,
        [
            (Account.BAD_DEBT_EXPENSE, applied_to_plan, "applied_to_plan"),
            (Account.GATEWAY_CLEARING, refunded_to_consumer, "refunded_to_consumer"),
        ],
    )


def written_off_waiver(*, interest: int = 0, fees: int = 0) -> list[Line]:
    """Interest and fees of a charged-off plan, written off already, waived by a refund
    [plan.waiver]: the write-off becomes a waiver.

    Dr waived_interest, Dr waived_fees / Cr bad_debt_expense.
    """
    return _split(
        Side.CREDIT,
        Account.BAD_DEBT_EXPENSE,
        [
            (Account.WAIVED_INTEREST, interest, "interest"),
            (Account.WAIVED_FEES, fees, "fees"),
        ],
    )


def waiver(*, interest: int = 0, fees: int = 0) -> list[Line]:
    """Due interest and unpaid late fees of installments canceled by a refund are waived
    [installment.waived].

    Dr waived_interest / Cr interest_receivable; Dr waived_fees / Cr fees_receivable.
    """
    lines: list[Line] = []
    if _part(interest, "interest"):
        lines += [
            debit(Account.WAIVED_INTEREST, interest),
            credit(Account.INTEREST_RECEIVABLE, interest),
        ]
    if _part(fees, "fees"):
        lines += [debit(Account.WAIVED_FEES, fees), credit(Account.FEES_RECEIVABLE, fees)]
    if not lines:
        raise PostingError("nothing to post: every part is zero")
    return lines


def charge_off(*, principal: int = 0, interest: int = 0, fees: int = 0) -> list[Line]:
    """A plan is charged off: its receivables are written off [plan.charged_off].

    Dr bad_debt_expense (total) / Cr consumer_receivable principal, Cr interest_receivable
    interest, Cr fees_receivable fees.
    """
    return _split(
        Side.DEBIT,
        Account.BAD_DEBT_EXPENSE,
        [
            (Account.CONSUMER_RECEIVABLE, principal, "principal"),
            (Account.INTEREST_RECEIVABLE, interest, "interest"),
            (Account.FEES_RECEIVABLE, fees, "fees"),
        ],
    )


def recovery(amount: int) -> list[Line]:
    """Money collected on a charged-off plan [plan.recovered].

    Dr gateway_clearing / Cr bad_debt_expense.
    """
    value = _check_amount(amount, "amount")
    return [debit(Account.GATEWAY_CLEARING, value), credit(Account.BAD_DEBT_EXPENSE, value)]


def settlement_payout(net: int) -> list[Line]:
    """A positive settlement net is paid out to the merchant [settlement.paid].

    Dr merchant_payable N / Cr payouts_clearing N.
    """
    amount = _check_amount(net, "net")
    return [debit(Account.MERCHANT_PAYABLE, amount), credit(Account.PAYOUTS_CLEARING, amount)]


def carry_negative_net(amount: int) -> list[Line]:
    """A negative settlement net of -X is carried over [settlement.carried_over].

    Dr merchant_receivable X / Cr merchant_payable X (the merchant's payable goes back to zero,
    what it owes us becomes a receivable).
    """
    value = _check_amount(amount, "amount")
    return [debit(Account.MERCHANT_RECEIVABLE, value), credit(Account.MERCHANT_PAYABLE, value)]


def apply_carried_over(amount: int) -> list[Line]:
    """A carried-over shortfall X is netted in a later settlement [settlement.carry_applied].

    Dr merchant_payable X / Cr merchant_receivable X.
    """
    value = _check_amount(amount, "amount")
    return [debit(Account.MERCHANT_PAYABLE, value), credit(Account.MERCHANT_RECEIVABLE, value)]


def gateway_sweep(amount: int) -> list[Line]:
    """The card gateway remits collected funds to our bank [treasury.gateway_swept].

    Dr operating_cash / Cr gateway_clearing.
    """
    value = _check_amount(amount, "amount")
    return [debit(Account.OPERATING_CASH, value), credit(Account.GATEWAY_CLEARING, value)]


def payout_funding(amount: int) -> list[Line]:
    """Treasury funds the payout provider for payouts sent [treasury.payouts_funded].

    Dr payouts_clearing / Cr operating_cash.
    """
    value = _check_amount(amount, "amount")
    return [debit(Account.PAYOUTS_CLEARING, value), credit(Account.OPERATING_CASH, value)]
