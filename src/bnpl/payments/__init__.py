"""Payments: payment objects and their attempts, gateway orchestration with retries.

Facade for the contexts that move money (checkout, installments):

- `open_charge(conn, ...)` records a charge and its gateway idempotency key; commit it.
- `run_charge(gateway, payment, clock)` calls the gateway outside any transaction,
  retrying transient failures with the same key.
- `settle(conn, payment, settlement, at=...)` records the outcome and emits its event;
  `open_charges` and `settle_many` do the same for many payments in a few statements.
- `open_refund(conn, ...)` records a refund to the consumer; it is paid back asynchronously.
"""

from __future__ import annotations

from bnpl.payments.domain import Failure, Payment, PaymentKind, PaymentStatus, Settlement
from bnpl.payments.handlers import execute_refund_handler
from bnpl.payments.repository import attach_to_plan, get_payment, get_payments
from bnpl.payments.schemas import PaymentOut
from bnpl.payments.service import (
    GatewayUnavailable,
    NewCharge,
    NothingToRefund,
    Settle,
    cancel,
    gateway_breaker,
    open_charge,
    open_charges,
    open_refund,
    reopen,
    run_charge,
    settle,
    settle_many,
)
from bnpl.providers import CircuitBreaker
from bnpl.runtime import Runtime


def breaker(rt: Runtime) -> CircuitBreaker:
    """This process's circuit breaker around the card gateway."""
    found: CircuitBreaker = rt.components["payments.breaker"]
    return found


def register(rt: Runtime) -> None:
    rt.components["payments.breaker"] = gateway_breaker()
    rt.bus.subscribe(
        "payments.execute_refund", {"payment.refund_requested"}, execute_refund_handler(rt)
    )


__all__ = [
    "Failure",
    "GatewayUnavailable",
    "NewCharge",
    "NothingToRefund",
    "Payment",
    "PaymentKind",
    "PaymentOut",
    "PaymentStatus",
    "Settle",
    "Settlement",
    "attach_to_plan",
    "breaker",
    "cancel",
    "gateway_breaker",
    "get_payment",
    "get_payments",
    "open_charge",
    "open_charges",
    "open_refund",
    "register",
    "reopen",
    "run_charge",
    "settle",
    "settle_many",
]
