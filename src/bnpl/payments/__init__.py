"""Payments: payment objects and their attempts, gateway orchestration with retries.

Facade for the contexts that move money (checkout, installments):

- `open_charge(conn, ...)` records a charge and its gateway idempotency key; commit it.
- `run_charge(gateway, payment, clock)` calls the gateway outside any transaction,
  retrying transient failures with the same key.
- `settle(conn, payment, settlement, at=...)` records the outcome and emits its event.
- `open_refund(conn, ...)` records a refund to the consumer; it is paid back asynchronously.
"""

from __future__ import annotations

from bnpl.payments.domain import Failure, Payment, PaymentKind, PaymentStatus, Settlement
from bnpl.payments.handlers import execute_refund_handler
from bnpl.payments.repository import attach_to_plan, get_payment
from bnpl.payments.service import (
    NothingToRefund,
    open_charge,
    open_refund,
    run_charge,
    settle,
)
from bnpl.runtime import Runtime


def register(rt: Runtime) -> None:
    rt.bus.subscribe(
        "payments.execute_refund", {"payment.refund_requested"}, execute_refund_handler(rt)
    )


__all__ = [
    "Failure",
    "NothingToRefund",
    "Payment",
    "PaymentKind",
    "PaymentStatus",
    "Settlement",
    "attach_to_plan",
    "get_payment",
    "open_charge",
    "open_refund",
    "register",
    "run_charge",
    "settle",
]
