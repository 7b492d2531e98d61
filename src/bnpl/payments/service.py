"""Payment use cases: record the intent, call the gateway with retries, settle the outcome.

Gateway calls never run inside a database transaction that holds business locks: the caller
commits `open_charge`/`open_refund` first (so the idempotency key is on record), calls
`run_charge`/`run_refund`, and settles the result in a new transaction.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from bnpl.kit.clock import Clock
from bnpl.kit.ids import new_id
from bnpl.messaging import NewEvent, publish, publish_many
from bnpl.payments import repository as repo
from bnpl.payments.domain import (
    Attempt,
    Failure,
    Payment,
    PaymentKind,
    PaymentStatus,
    Settlement,
    classify,
)
from bnpl.providers import CardGateway, ChargeOutcome, ChargeResult, CircuitBreaker, CircuitOpen

log = logging.getLogger(__name__)

IN_ATTEMPT_RETRIES = 4  # transient failures are retried this many times within one attempt


class NothingToRefund(Exception):
    """The plan's succeeded charges cannot cover the refund."""


@dataclass(frozen=True, slots=True)
class NewCharge:
    """A charge about to be made (`open_charges`)."""

    kind: PaymentKind
    consumer_id: str
    amount: int
    currency: str
    payment_method_id: str
    gateway_token: str
    plan_id: str | None = None
    checkout_id: str | None = None


async def open_charges(
    conn: asyncpg.Connection, charges: Sequence[NewCharge], *, at: datetime
) -> list[Payment]:
    """Record charges about to be made, in one statement; each id is its gateway key."""
    return await repo.insert_payments(
        conn,
        [
            repo.NewPayment(
                payment_id=new_id("pay"),
                consumer_id=c.consumer_id,
                plan_id=c.plan_id,
                checkout_id=c.checkout_id,
                kind=c.kind,
                amount=c.amount,
                currency=c.currency,
                payment_method_id=c.payment_method_id,
                gateway_token=c.gateway_token,
            )
            for c in charges
        ],
        at=at,
    )


async def open_charge(
    conn: asyncpg.Connection,
    *,
    kind: PaymentKind,
    consumer_id: str,
    amount: int,
    currency: str,
    payment_method_id: str,
    gateway_token: str,
    at: datetime,
    plan_id: str | None = None,
    checkout_id: str | None = None,
) -> Payment:
    """Record a charge about to be made; its id is its gateway idempotency key."""
    charge = NewCharge(
        kind, consumer_id, amount, currency, payment_method_id, gateway_token, plan_id, checkout_id
    )
    [payment] = await open_charges(conn, [charge], at=at)
    return payment


def _outcome_word(result: ChargeResult) -> str:
    return {
        ChargeOutcome.SUCCEEDED: "succeeded",
        ChargeOutcome.DECLINED: "declined",
        ChargeOutcome.TRANSIENT: "transient",
    }[result.outcome]


class GatewayUnavailable(Exception):
    """The gateway's circuit breaker is open: nothing was sent; try again later."""


class _Transient(Exception):
    def __init__(self, result: ChargeResult) -> None:
        super().__init__(result.code)
        self.result = result


def gateway_breaker(
    failure_threshold: int = 20, recovery_timeout_s: float = 30.0
) -> CircuitBreaker:
    """Opens after `failure_threshold` transient failures in a row; while open, charges are
    not sent (collections wait for it to close instead of failing)."""
    return CircuitBreaker(
        failure_threshold=failure_threshold,
        recovery_timeout_s=recovery_timeout_s,
        name="card-gateway",
    )


async def _through(
    breaker: CircuitBreaker, call: Callable[[], Awaitable[ChargeResult]]
) -> ChargeResult:
    """One gateway call behind the breaker: a transient answer counts as a failure."""
    try:
        with breaker.attempt():
            result = await call()
            if result.outcome is ChargeOutcome.TRANSIENT:
                raise _Transient(result)
    except _Transient as transient:
        return transient.result
    return result


async def _with_retries(
    call: Callable[[], Awaitable[ChargeResult]],
    clock: Clock,
    *,
    max_wait: float,
    breaker: CircuitBreaker | None = None,
) -> Settlement:
    """Run a gateway call, retrying transient failures with the same idempotency key."""
    attempts: list[Attempt] = []

    async def once() -> ChargeResult:
        if breaker is None:
            result = await call()
        else:
            try:
                result = await _through(breaker, call)
            except CircuitOpen as exc:
                if not attempts:
                    raise GatewayUnavailable(str(exc)) from exc
                result = ChargeResult(ChargeOutcome.TRANSIENT, "circuit_open", None)
        attempts.append(
            Attempt(clock.now(), _outcome_word(result), result.code, result.gateway_reference)
        )
        return result

    result = await once()
    if result.outcome is ChargeOutcome.TRANSIENT:
        # Only now the retry machinery (most calls are answered the first time), on the
        # schedule of retrying from the start: waits of 0.05 * 2**n s plus jitter.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(IN_ATTEMPT_RETRIES - 1),
            wait=wait_exponential_jitter(multiplier=0.1, max=max_wait, jitter=0.05),
            retry=retry_if_result(lambda r: r.outcome is ChargeOutcome.TRANSIENT),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        await asyncio.sleep(min(max_wait, 0.05 + random.uniform(0, 0.05)))  # noqa: S311 (jitter)
        result = await retrying(once)
    failure = classify(result)
    return Settlement(
        succeeded=failure is None,
        failure=failure,
        code=result.code,
        gateway_reference=result.gateway_reference,
        attempts=tuple(attempts),
    )


def attempt_key(payment: Payment, attempt: int) -> str:
    """The gateway idempotency key of one attempt: a retry days later is a new charge, a
    re-send of the same attempt (timeout, crash) reuses its key and is never charged twice."""
    return f"{payment.gateway_key}.{attempt}"


async def run_charge(
    gateway: CardGateway,
    payment: Payment,
    clock: Clock,
    *,
    attempt: int = 1,
    max_wait: float = 1.0,
    breaker: CircuitBreaker | None = None,
) -> Settlement:
    """Charge the payment's card at the gateway (no transaction may be open around this).

    Raises `GatewayUnavailable` when the breaker is open and nothing was sent.
    """
    if payment.gateway_token is None:
        raise ValueError("a charge needs a card token")
    token = payment.gateway_token
    key = attempt_key(payment, attempt)

    async def call() -> ChargeResult:
        return await gateway.charge(token, payment.amount, payment.currency, key)

    return await _with_retries(call, clock, max_wait=max_wait, breaker=breaker)


@dataclass(frozen=True, slots=True)
class Settle:
    """A gateway answer to record (`settle_many`); `next_attempt_at` for a decline that is
    retried later (the payment waits `retry_scheduled` instead of `failed`)."""

    payment: Payment
    settlement: Settlement
    merchant_id: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def status(self) -> PaymentStatus:
        if self.settlement.failure is Failure.TRANSIENT:
            return PaymentStatus.PROCESSING
        if self.settlement.succeeded:
            return PaymentStatus.SUCCEEDED
        if self.next_attempt_at is not None:
            return PaymentStatus.RETRY_SCHEDULED
        return PaymentStatus.FAILED


def _payment_event(item: Settle, at: datetime) -> NewEvent:
    payment, settlement = item.payment, item.settlement
    return NewEvent(
        "payment.succeeded" if settlement.succeeded else "payment.failed",
        payment.plan_id or payment.id,
        {
            "payment_id": payment.id,
            "plan_id": payment.plan_id,
            "kind": payment.kind.value,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": item.status.value,
            "failure_code": None if settlement.succeeded else settlement.code,
            "decline": settlement.failure.value if settlement.failure else None,
        },
        at,
        merchant_id=item.merchant_id,
        consumer_id=payment.consumer_id,
    )


async def settle_many(
    conn: asyncpg.Connection, items: Sequence[Settle], *, at: datetime
) -> list[PaymentStatus]:
    """Record the gateway's final answers and emit `payment.succeeded` / `payment.failed`
    for each, in a few statements whatever their number; their new statuses.

    A transient outcome (retries exhausted, money possibly moved) leaves the payment
    `processing`, to be resumed with the same key; it emits nothing.
    """
    await repo.record_outcomes(
        conn,
        [
            repo.Outcome(
                payment_id=item.payment.id,
                status=item.status,
                failure_code=None if item.settlement.succeeded else item.settlement.code,
                gateway_reference=item.settlement.gateway_reference,
                next_attempt_at=item.next_attempt_at,
                attempts=item.settlement.attempts,
            )
            for item in items
        ],
        at=at,
    )
    await publish_many(
        conn, [_payment_event(i, at) for i in items if i.status is not PaymentStatus.PROCESSING]
    )
    return [item.status for item in items]


async def settle(
    conn: asyncpg.Connection,
    payment: Payment,
    settlement: Settlement,
    *,
    at: datetime,
    merchant_id: str | None = None,
    next_attempt_at: datetime | None = None,
) -> PaymentStatus:
    """`settle_many` of one payment."""
    [status] = await settle_many(
        conn, [Settle(payment, settlement, merchant_id, next_attempt_at)], at=at
    )
    return status


async def open_refund(
    conn: asyncpg.Connection,
    *,
    consumer_id: str,
    plan_id: str,
    checkout_id: str | None,
    amount: int,
    currency: str,
    at: datetime,
    merchant_id: str | None = None,
) -> Payment:
    """Record a refund to the consumer, paid back against the plan's charges, newest first.

    Emits `payment.refund_requested`; the `payments.execute_refund` consumer calls the gateway.
    """
    slices: list[tuple[str, str, int]] = []
    left = amount
    for charge in await repo.refundable_charges(conn, plan_id):
        if left == 0:
            break
        part = min(left, charge["refundable"])
        slices.append((charge["id"], charge["gateway_reference"], part))
        left -= part
    if left:
        raise NothingToRefund(f"charges of {plan_id} cannot cover a refund of {amount}")
    payment = await repo.insert_payment(
        conn,
        repo.NewPayment(
            payment_id=new_id("pay"),
            consumer_id=consumer_id,
            plan_id=plan_id,
            checkout_id=checkout_id,
            kind=PaymentKind.REFUND,
            amount=amount,
            currency=currency,
            payment_method_id=None,
            gateway_token=None,
        ),
        at,
    )
    await repo.insert_refund_slices(conn, payment.id, slices)
    await publish(
        conn,
        "payment.refund_requested",
        plan_id,
        {"payment_id": payment.id, "amount": amount, "currency": currency},
        occurred_at=at,
        merchant_id=merchant_id,
        consumer_id=consumer_id,
    )
    return payment


async def execute_refund(
    conn: asyncpg.Connection, gateway: CardGateway, clock: Clock, payment_id: str
) -> PaymentStatus:
    """Pay a recorded refund back through the gateway, slice by slice (idempotent keys)."""
    payment = await repo.get_payment(conn, payment_id, lock=True)
    if payment is None or payment.status is not PaymentStatus.PROCESSING:
        return payment.status if payment else PaymentStatus.CANCELED
    attempts: list[Attempt] = []
    settlement: Settlement | None = None
    for piece in await repo.refund_slices(conn, payment_id):
        if piece["gateway_reference"] is not None:
            continue

        async def call(piece: asyncpg.Record = piece) -> ChargeResult:
            return await gateway.refund(
                piece["charge_reference"], piece["amount"], payment.currency, piece["gateway_key"]
            )

        settlement = await _with_retries(call, clock, max_wait=1.0)
        attempts.extend(settlement.attempts)
        if not settlement.succeeded:
            break
        await repo.mark_slice_refunded(conn, payment_id, piece["n"], settlement.gateway_reference)
    final = settlement or Settlement(True, None, None, None, ())
    final = Settlement(
        final.succeeded, final.failure, final.code, final.gateway_reference, tuple(attempts)
    )
    return await settle(conn, payment, final, at=clock.now())


async def reopen(conn: asyncpg.Connection, *payment_ids: str, at: datetime) -> None:
    """Scheduled retries are being attempted: the payments are `processing` again."""
    if payment_ids:
        await repo.set_statuses(conn, payment_ids, PaymentStatus.PROCESSING, at=at)


async def cancel(conn: asyncpg.Connection, *payment_ids: str, at: datetime) -> None:
    """Give up payments that were waiting for a retry (the amount due changed)."""
    if payment_ids:
        await repo.set_statuses(conn, payment_ids, PaymentStatus.CANCELED, at=at)
