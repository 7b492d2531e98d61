"""The circuit breaker around the card gateway: transient failures open it, and while it is
open nothing is sent (collections wait); a success closes it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bnpl.kit.clock import Clock
from bnpl.payments import GatewayUnavailable, Payment, PaymentKind, PaymentStatus, run_charge
from bnpl.payments.service import gateway_breaker
from bnpl.providers import BreakerState, ChargeOutcome, ChargeResult


@dataclass
class StubGateway:
    """Answers every charge with `outcome`; records the keys it was sent."""

    outcome: ChargeOutcome = ChargeOutcome.TRANSIENT
    keys: list[str] = field(default_factory=list)

    async def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> None:
        raise NotImplementedError

    async def charge(
        self, token: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        self.keys.append(idempotency_key)
        if self.outcome is ChargeOutcome.SUCCEEDED:
            return ChargeResult(self.outcome, None, "ch_1")
        return ChargeResult(self.outcome, "processing_error", None)

    async def refund(
        self, charge_reference: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        raise NotImplementedError


def payment(n: int) -> Payment:
    return Payment(
        id=f"pay_{n}",
        consumer_id="cus_1",
        plan_id="pln_1",
        checkout_id=None,
        kind=PaymentKind.INSTALLMENT,
        amount=1_000,
        currency="USD",
        status=PaymentStatus.PROCESSING,
        failure_code=None,
        payment_method_id="pm_1",
        gateway_key=f"pay_{n}",
        gateway_token="tok_1",
        gateway_reference=None,
        next_attempt_at=None,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


async def test_transient_failures_open_it_and_then_nothing_is_sent() -> None:
    gateway, clock = StubGateway(), Clock()
    now = [0.0]
    breaker = gateway_breaker(failure_threshold=3, recovery_timeout_s=30)
    breaker._clock = lambda: now[0]
    settlement = await run_charge(gateway, payment(1), clock, breaker=breaker, max_wait=0.0)
    # Three tries of one attempt, all with its key; the third failure opens the breaker,
    # and the fourth try is not sent.
    assert gateway.keys == ["pay_1.1"] * 3
    assert settlement.failure is not None and settlement.code == "circuit_open"
    assert breaker.state is BreakerState.OPEN

    with pytest.raises(GatewayUnavailable):
        await run_charge(gateway, payment(2), clock, breaker=breaker)
    assert len(gateway.keys) == 3  # nothing went out while open

    now[0] = 31.0  # half-open: one probe goes through, and its success closes it
    gateway.outcome = ChargeOutcome.SUCCEEDED
    settlement = await run_charge(gateway, payment(3), clock, breaker=breaker)
    assert settlement.succeeded and gateway.keys[-1] == "pay_3.1"
    assert breaker.state is BreakerState.CLOSED


async def test_a_declined_charge_is_an_answer_not_a_failure() -> None:
    gateway = StubGateway(ChargeOutcome.DECLINED)
    breaker = gateway_breaker(failure_threshold=1)
    for n in range(3):
        settlement = await run_charge(gateway, payment(n), Clock(), breaker=breaker)
        assert not settlement.succeeded and settlement.code == "processing_error"
    assert breaker.state is BreakerState.CLOSED and len(gateway.keys) == 3
