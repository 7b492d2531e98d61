"""Ledger verification: the built-in journal checks plus invariants other contexts register.

Other contexts own the data the ledger must agree with (installments: unpaid principal of open
plans; checkout/merchants: captured, unsettled amounts), so they register a check here, from
their `register(rt)`, that compares `account_balance(conn, ...)` with their own sums. All
checks of one verification run in one read-only REPEATABLE READ transaction, so they compare
one consistent snapshot even while postings keep committing; each runs under a savepoint, so
one that fails with an error is reported and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from bnpl.kit.db import Database
from bnpl.ledger import repository
from bnpl.ledger.domain import Account

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a check answers: whether the invariant holds, and a short human explanation."""

    ok: bool
    detail: str = ""


Check = Callable[[asyncpg.Connection], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checks: tuple[CheckOutcome, ...]


# --------------------------------------------------------------------------- built-in checks


async def _entries_balanced(conn: asyncpg.Connection) -> CheckResult:
    count, sample = await repository.unbalanced_entries(conn)
    if count:
        return CheckResult(False, f"{count} unbalanced entries, e.g. {', '.join(sample)}")
    return CheckResult(True, "every entry's debits equal its credits, in its one currency")


async def _trial_balance(conn: asyncpg.Connection) -> CheckResult:
    rows = await repository.trial_balance(conn)
    off = [r for r in rows if r["debits"] != r["credits"]]
    if off:
        detail = "; ".join(
            f"{r['currency']}: debits {r['debits']} credits {r['credits']}" for r in off
        )
        return CheckResult(False, detail)
    totals = ", ".join(f"{r['currency']} {r['debits']}" for r in rows) or "no entries yet"
    return CheckResult(True, f"debits = credits per currency ({totals})")


async def _amounts_positive(conn: asyncpg.Connection) -> CheckResult:
    count = await repository.non_positive_amounts(conn)
    if count:
        return CheckResult(False, f"{count} lines or entries with a non-positive amount")
    return CheckResult(True, "every amount is positive")


async def _accounts_in_chart(conn: asyncpg.Connection) -> CheckResult:
    foreign = await repository.foreign_accounts(conn, [a.value for a in Account])
    if foreign:
        return CheckResult(False, f"accounts outside the chart: {', '.join(foreign)}")
    return CheckResult(True, "every line uses an account of the chart")


async def _balances_match_journal(conn: asyncpg.Connection) -> CheckResult:
    rows = await repository.bucket_mismatches(conn)
    if rows:
        detail = "; ".join(
            f"{r['account']} {r['currency']}: journal {r['journal_debits']}/{r['journal_credits']}"
            f" balances {r['bucket_debits']}/{r['bucket_credits']}"
            for r in rows[:5]
        )
        return CheckResult(False, detail)
    return CheckResult(True, "the running balances equal the journal's sums")


BUILT_IN: tuple[tuple[str, Check], ...] = (
    ("ledger.entries_balanced", _entries_balanced),
    ("ledger.trial_balance_zero", _trial_balance),
    ("ledger.amounts_positive", _amounts_positive),
    ("ledger.accounts_in_chart", _accounts_in_chart),
    ("ledger.balances_match_journal", _balances_match_journal),
)
_BUILT_IN_NAMES = frozenset(name for name, _ in BUILT_IN)

# Process-wide: the contexts of this process register theirs at start-up.
_REGISTRY: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add an invariant to `GET /v1/ledger/verify` (name it `<context>.<what>`). Registering a
    name again replaces its check (a context's `register` may run once per app instance)."""
    if not isinstance(name, str) or not name or len(name) > 100:
        raise ValueError("a check needs a name of 1 to 100 characters")
    if name in _BUILT_IN_NAMES:
        raise ValueError(f"{name!r} is a built-in ledger check")
    if not callable(check):
        raise TypeError("a check is an async callable taking a connection")
    _REGISTRY[name] = check


def unregister_check(name: str) -> None:
    """Remove a registered check (no error if it is not there)."""
    _REGISTRY.pop(name, None)


@contextmanager
def registered_check(name: str, check: Check) -> Iterator[None]:
    """A check registered for the duration of a block (tests)."""
    register_check(name, check)
    try:
        yield
    finally:
        unregister_check(name)


def registered_checks() -> list[str]:
    return sorted(_REGISTRY)


async def _run(conn: asyncpg.Connection, name: str, check: Check) -> CheckOutcome:
    try:
        async with conn.transaction():  # a savepoint: a failing check leaves the rest working
            result: object = await check(conn)
    except Exception as exc:
        log.exception("ledger check failed to run", extra={"check": name})
        return CheckOutcome(name, False, f"the check failed to run: {type(exc).__name__}: {exc}")
    if not isinstance(result, CheckResult):
        return CheckOutcome(
            name, False, f"the check answered {type(result).__name__}, not a CheckResult"
        )
    return CheckOutcome(name, bool(result.ok), result.detail)


async def verify(db: Database) -> Verification:
    """Run every built-in and registered check on one consistent snapshot."""
    checks = [*BUILT_IN, *sorted(_REGISTRY.items())]
    async with (
        db.connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        outcomes = tuple([await _run(conn, name, check) for name, check in checks])
    return Verification(all(o.ok for o in outcomes), outcomes)
