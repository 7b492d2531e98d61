"""Checkout use cases: the purchase flow of DOMAIN.md, orchestrating credit, installments,
payments and the ledger. Every function runs in the caller's transaction; the only gateway
call (the down payment) happens between two transactions (`begin_confirm` / `finish_confirm`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bnpl import credit, identity, installments, ledger, merchants, payments
from bnpl.checkout import events
from bnpl.checkout import repository as repo
from bnpl.checkout.domain import (
    AUTHORIZATION_VALID_FOR,
    OPEN_FOR,
    Checkout,
    CheckoutStatus,
    PlanOption,
    merchant_fee,
    status_after_refund,
)
from bnpl.kit.errors import conflict, not_found, unprocessable
from bnpl.kit.ids import new_id
from bnpl.kit.money import SUPPORTED_CURRENCIES
from bnpl.runtime import Runtime

RESUME_AFTER = timedelta(minutes=1)


# -- creation ----------------------------------------------------------------------------


def plan_options(config: merchants.MerchantConfig, amount: int) -> list[PlanOption]:
    """The plans the merchant offers for this amount, with their regular installment."""
    options = []
    for plan in config.plans:
        bounds = config.amount_range(plan)
        if bounds is None or not bounds[0] <= amount <= bounds[1]:
            continue
        kind = installments.PlanKind(plan)
        apr = config.monthly_apr_bps if kind.charges_interest else 0
        options.append(
            PlanOption(
                plan=plan,
                installment_amount=installments.installment_amount_preview(kind, amount, apr),
                installments=kind.installment_count,
                apr_bps=apr,
            )
        )
    return options


async def create_checkout(
    conn: asyncpg.Connection,
    *,
    merchant_id: str,
    amount: int,
    currency: str,
    merchant_reference: str | None,
    items: list[dict[str, Any]] | None,
    consumer_email: str | None,
    success_url: str | None,
    cancel_url: str | None,
    at: datetime,
) -> tuple[Checkout, list[PlanOption]]:
    config = await merchants.merchant_config(conn, merchant_id)
    if config is None or not config.is_active:
        raise conflict("merchant_not_active", "The merchant is not active.")
    if currency not in SUPPORTED_CURRENCIES:
        raise unprocessable("unsupported_currency", f"{currency} is not supported.", "currency")
    if items is not None and sum(i["quantity"] * i["unit_price"] for i in items) != amount:
        raise unprocessable("amount_mismatch", "The items do not add up to the amount.", "amount")
    options = plan_options(config, amount)
    if not options:
        raise unprocessable(
            "amount_out_of_range",
            f"No plan finances {amount} for this merchant "
            f"(range {config.min_amount}-{config.max_amount}).",
            "amount",
        )
    checkout = await repo.insert(
        conn,
        checkout_id=new_id("chk"),
        merchant_id=merchant_id,
        amount=amount,
        currency=currency,
        merchant_reference=merchant_reference,
        items=items,
        consumer_email=consumer_email,
        success_url=success_url,
        cancel_url=cancel_url,
        expires_at=at + OPEN_FOR,
        at=at,
    )
    await events.emit(conn, events.CREATED, checkout, at=at)
    return checkout, options


async def get_checkout(conn: asyncpg.Connection, checkout_id: str) -> Checkout | None:
    return await repo.get(conn, checkout_id)


# -- confirmation --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmStep:
    """The outcome of `begin_confirm`: final, or a down payment to charge now."""

    checkout: Checkout
    down_payment: payments.Payment | None = None


async def begin_confirm(
    conn: asyncpg.Connection,
    rt: Runtime,
    *,
    checkout_id: str,
    consumer_id: str,
    plan: str,
    payment_method_id: str,
    at: datetime,
) -> ConfirmStep:
    """Decide credit and, for plans without a down payment, authorize at once.

    The checkout row lock makes a second confirm of one checkout wait, then see it is no
    longer open: one checkout can never get two plans.
    """
    checkout = await repo.get(conn, checkout_id, lock=True)
    if checkout is None:
        raise not_found("checkout")
    if checkout.status is not CheckoutStatus.OPEN or checkout.expires_at <= at:
        raise conflict("checkout_not_open", "This checkout is not open for confirmation.")
    config = await merchants.merchant_config(conn, checkout.merchant_id)
    if config is None or plan not in config.plans:
        raise unprocessable("plan_not_available", f"The merchant does not offer {plan}.", "plan")
    token = await identity.payment_method_token(conn, consumer_id, payment_method_id)
    if token is None:
        raise unprocessable(
            "invalid_payment_method", "No such payment method.", "payment_method_id"
        )
    facts = await identity.consumer_facts(conn, consumer_id)
    if facts is None:
        raise not_found("consumer")
    kind = installments.PlanKind(plan)
    decision = await credit.decide(
        conn,
        rt,
        credit.CreditApplication(
            consumer_id=consumer_id,
            checkout_id=checkout.id,
            merchant_id=checkout.merchant_id,
            amount=checkout.amount,
            currency=checkout.currency,
            plan=plan,
            amount_range=config.amount_range(plan),
            merchant_category=config.mcc,
            kyc_status=str(facts.kyc_status),
            date_of_birth=facts.date_of_birth,
            consumer_since=facts.created_at,
            has_delinquent_plan=await installments.has_delinquent_plan(conn, consumer_id),
            # The bureau is asked by name when its cached report is missing or stale.
            first_name=facts.first_name,
            last_name=facts.last_name,
            country=facts.country,
        ),
        at=at,
    )
    decided = {
        "consumer_id": consumer_id,
        "plan_kind": plan,
        "decision_id": decision.id,
        "decision_outcome": decision.outcome,
        "decline_reasons": list(decision.reasons) or None,
    }
    if decision.outcome != "approved":
        checkout = await repo.update(
            conn, checkout.id, at, status=CheckoutStatus.DECLINED, **decided
        )
        await events.emit(
            conn, events.DECLINED, checkout, at=at, extra={"reasons": list(decision.reasons)}
        )
        return ConfirmStep(checkout)

    if not kind.has_down_payment:
        apr_bps = config.monthly_apr_bps if kind.charges_interest else 0
        checkout = await _authorize(conn, checkout, apr_bps, kind, payment_method_id, decided, at)
        return ConfirmStep(checkout)

    # pay_in_4: installment 1 is charged now. Record the charge (and its gateway key) and
    # commit before calling the gateway; a crash from here on is resumed by `resume`.
    first = installments.build_schedule(kind, checkout.amount, 0, at.date())[0]
    payment = await payments.open_charge(
        conn,
        kind=payments.PaymentKind.DOWN_PAYMENT,
        consumer_id=consumer_id,
        amount=first.amount,
        currency=checkout.currency,
        payment_method_id=payment_method_id,
        gateway_token=token,
        checkout_id=checkout.id,
        at=at,
    )
    checkout = await repo.update(
        conn,
        checkout.id,
        at,
        status=CheckoutStatus.CONFIRMING,
        down_payment_id=payment.id,
        resume_at=at + RESUME_AFTER,
        **decided,
    )
    return ConfirmStep(checkout, payment)


async def finish_confirm(
    conn: asyncpg.Connection,
    rt: Runtime,
    *,
    checkout_id: str,
    settlement: payments.Settlement,
    at: datetime,
) -> Checkout:
    """Authorize (down payment captured) or decline (`payment_method_declined`).

    Safe to run twice (the request and the resume job may race): only a checkout still
    `confirming` changes.
    """
    checkout = await repo.get(conn, checkout_id, lock=True)
    if checkout is None:
        raise not_found("checkout")
    if checkout.status is not CheckoutStatus.CONFIRMING:
        return checkout
    assert checkout.down_payment_id and checkout.consumer_id and checkout.plan_kind
    plan_kind = checkout.plan_kind
    payment = await payments.get_payment(conn, checkout.down_payment_id, with_attempts=False)
    assert payment is not None
    if settlement.failure is payments.Failure.TRANSIENT:
        await payments.settle(conn, payment, settlement, at=at, merchant_id=checkout.merchant_id)
        return await repo.update(conn, checkout.id, at, resume_at=at + RESUME_AFTER)
    if not settlement.succeeded:
        await payments.settle(conn, payment, settlement, at=at, merchant_id=checkout.merchant_id)
        assert checkout.decision_id
        await credit.record_payment_decline(
            conn,
            checkout.decision_id,
            consumer_id=checkout.consumer_id,
            amount=checkout.amount,
            at=at,
        )
        reasons = [credit.PAYMENT_METHOD_DECLINED]
        checkout = await repo.update(
            conn,
            checkout.id,
            at,
            status=CheckoutStatus.DECLINED,
            decision_outcome="declined",
            decline_reasons=reasons,
            resume_at=None,
        )
        await events.emit(conn, events.DECLINED, checkout, at=at, extra={"reasons": reasons})
        return checkout
    kind = installments.PlanKind(plan_kind)
    apr_bps = 0
    if kind.charges_interest:  # the merchant's APR; pay_in_4 needs no read of its config
        config = await merchants.merchant_config(conn, checkout.merchant_id)
        assert config is not None
        apr_bps = config.monthly_apr_bps
    assert payment.payment_method_id
    checkout = await _authorize(
        conn,
        checkout,
        apr_bps,
        kind,
        payment.payment_method_id,
        {"resume_at": None},
        at,
        down_payment=payment,
    )
    # Settled once the plan exists, so that `payment.succeeded` names the plan it paid.
    await payments.settle(
        conn,
        replace(payment, plan_id=checkout.plan_id),
        settlement,
        at=at,
        merchant_id=checkout.merchant_id,
    )
    return checkout


async def _authorize(
    conn: asyncpg.Connection,
    checkout: Checkout,
    apr_bps: int,
    kind: installments.PlanKind,
    payment_method_id: str,
    fields: dict[str, Any],
    at: datetime,
    down_payment: payments.Payment | None = None,
) -> Checkout:
    """The plan, its authorization (and the down payment applied to it) in the ledger, the
    checkout `authorized`."""
    consumer_id = fields.get("consumer_id") or checkout.consumer_id
    assert consumer_id is not None
    terms: installments.PlanTerms = {
        "checkout_id": checkout.id,
        "consumer_id": consumer_id,
        "merchant_id": checkout.merchant_id,
        "kind": kind,
        "principal": checkout.amount,
        "currency": checkout.currency,
        "apr_bps": apr_bps,
        "authorization_date": at.date(),
        "payment_method_id": payment_method_id,
        "at": at,
    }
    applied = None
    if down_payment is None:
        plan = await installments.create_plan(conn, **terms)
    else:  # the plan with its down payment applied, written once
        applied = await installments.create_plan_paid_down(
            conn, down_payment=down_payment.amount, **terms
        )
        plan = applied.plan
    postings = [
        ledger.Posting(
            kind="plan.authorized",
            reference_id=plan.id,
            currency=checkout.currency,
            lines=ledger.authorization(checkout.amount),
            consumer_id=consumer_id,
            merchant_id=checkout.merchant_id,
        )
    ]
    if down_payment is not None and applied is not None:
        await payments.attach_to_plan(conn, down_payment.id, plan.id)
        postings.append(
            ledger.Posting(
                kind="payment.received",
                reference_id=down_payment.id,
                currency=checkout.currency,
                lines=ledger.consumer_payment(
                    principal=applied.principal, interest=applied.interest, fees=applied.fees
                ),
                consumer_id=consumer_id,
                merchant_id=checkout.merchant_id,
            )
        )
        await credit.release_exposure(conn, consumer_id, applied.principal)
    await ledger.post_many(conn, postings, at=at)
    checkout = await repo.update(
        conn,
        checkout.id,
        at,
        status=CheckoutStatus.AUTHORIZED,
        plan_id=plan.id,
        authorized_at=at,
        authorization_expires_at=at + AUTHORIZATION_VALID_FOR,
        **fields,
    )
    await events.emit(conn, events.AUTHORIZED, checkout, at=at)
    return checkout


# -- after authorization -------------------------------------------------------------------


async def _give_back(
    conn: asyncpg.Connection,
    checkout: Checkout,
    amount: int,
    *,
    before_capture: bool,
    kind: str,
    reference_id: str,
    at: datetime,
) -> tuple[int, int, str | None]:
    """Take `amount` off the plan (refund allocation), paying any excess back to the card.

    The money comes back from `merchant_authorized` before capture, `merchant_payable` after.
    Returns (applied_to_plan, refunded_to_consumer, refund payment id).

    A charged-off plan is allocated the same way, but what is applied to it reduces debt
    already written off: it is a recovery (`ledger.refund_of_written_off`), and the charge-off
    already released its exposure (installments books the fees and interest the refund waives
    there against the write-off too).
    """
    assert checkout.plan_id and checkout.consumer_id
    applied = await installments.apply_refund(conn, checkout.plan_id, amount, at=at)
    # Read under the plan's lock (taken by apply_refund); a refund never changes a
    # charged-off status, so this is the status the refund was applied to.
    written_off = applied.plan.status is installments.PlanStatus.CHARGED_OFF
    if written_off:
        lines = ledger.refund_of_written_off(
            applied_to_plan=applied.applied_to_plan,
            refunded_to_consumer=applied.refunded_to_consumer,
            before_capture=before_capture,
        )
    else:
        lines = (ledger.release_authorization if before_capture else ledger.refund)(
            applied_to_plan=applied.applied_to_plan,
            refunded_to_consumer=applied.refunded_to_consumer,
        )
    await ledger.post(
        conn,
        kind=kind,
        reference_id=reference_id,
        currency=checkout.currency,
        lines=lines,
        at=at,
        consumer_id=checkout.consumer_id,
        merchant_id=checkout.merchant_id,
    )
    if not written_off:
        await credit.release_exposure(conn, checkout.consumer_id, applied.applied_to_plan)
    payment_id = None
    if applied.refunded_to_consumer > 0:
        refund = await payments.open_refund(
            conn,
            consumer_id=checkout.consumer_id,
            plan_id=checkout.plan_id,
            checkout_id=checkout.id,
            amount=applied.refunded_to_consumer,
            currency=checkout.currency,
            at=at,
            merchant_id=checkout.merchant_id,
        )
        payment_id = refund.id
    return applied.applied_to_plan, applied.refunded_to_consumer, payment_id


async def capture(
    conn: asyncpg.Connection,
    *,
    checkout_id: str,
    merchant_id: str,
    amount: int | None,
    at: datetime,
) -> Checkout:
    checkout = await _merchants_checkout(conn, checkout_id, merchant_id)
    # An authorization past its expiry is refused even before the expiry job has run (the
    # row lock orders this against that job, whichever comes first).
    expires_at = checkout.authorization_expires_at
    if checkout.status is not CheckoutStatus.AUTHORIZED or (
        expires_at is not None and expires_at <= at
    ):
        raise conflict("checkout_not_authorized", "Only an authorized checkout can be captured.")
    captured = checkout.amount if amount is None else amount
    if captured > checkout.amount:
        raise unprocessable(
            "amount_exceeds_authorized",
            f"At most {checkout.amount} can be captured.",
            "amount",
        )
    released = checkout.amount - captured
    if released:
        await _give_back(
            conn,
            checkout,
            released,
            before_capture=True,
            kind="capture.released",
            reference_id=checkout.id,
            at=at,
        )
    config = await merchants.merchant_config(conn, merchant_id)
    assert config is not None
    fee = merchant_fee(captured, config.mdr_bps, config.fixed_fee)
    await ledger.post(
        conn,
        kind="checkout.captured",
        reference_id=checkout.id,
        currency=checkout.currency,
        lines=ledger.capture(captured=captured, fee=fee),
        at=at,
        consumer_id=checkout.consumer_id,
        merchant_id=merchant_id,
    )
    checkout = await repo.update(
        conn,
        checkout.id,
        at,
        status=CheckoutStatus.CAPTURED,
        captured_amount=captured,
        captured_at=at,
        fee_amount=fee,
    )
    await events.emit(conn, events.CAPTURED, checkout, at=at, extra={"fee": fee})
    return checkout


async def cancel_authorization(
    conn: asyncpg.Connection, checkout: Checkout, *, status: CheckoutStatus, at: datetime
) -> Checkout:
    """Void (merchant) or expiry (7 days): the plan is canceled, the consumer repaid."""
    assert checkout.plan_id and checkout.consumer_id
    cancellation = await installments.cancel_plan(conn, checkout.plan_id, at=at)
    await ledger.post(
        conn,
        kind=f"checkout.{status.value}",
        reference_id=checkout.id,
        currency=checkout.currency,
        lines=ledger.cancellation(
            released_principal=cancellation.unpaid_principal_released,
            paid_principal=cancellation.paid_principal,
            paid_interest=cancellation.paid_interest,
            paid_fees=cancellation.paid_fees,
        ),
        at=at,
        consumer_id=checkout.consumer_id,
        merchant_id=checkout.merchant_id,
    )
    await credit.release_exposure(
        conn, checkout.consumer_id, cancellation.unpaid_principal_released
    )
    if cancellation.paid_by_consumer > 0:
        await payments.open_refund(
            conn,
            consumer_id=checkout.consumer_id,
            plan_id=checkout.plan_id,
            checkout_id=checkout.id,
            amount=cancellation.paid_by_consumer,
            currency=checkout.currency,
            at=at,
            merchant_id=checkout.merchant_id,
        )
    checkout = await repo.update(conn, checkout.id, at, status=status)
    await events.emit(
        conn, events.VOIDED if status is CheckoutStatus.VOIDED else events.EXPIRED, checkout, at=at
    )
    return checkout


async def void(
    conn: asyncpg.Connection, *, checkout_id: str, merchant_id: str, at: datetime
) -> Checkout:
    checkout = await _merchants_checkout(conn, checkout_id, merchant_id)
    if checkout.status is not CheckoutStatus.AUTHORIZED:
        raise conflict("checkout_not_authorized", "Only an authorized checkout can be voided.")
    return await cancel_authorization(conn, checkout, status=CheckoutStatus.VOIDED, at=at)


@dataclass(frozen=True)
class Refund:
    id: str
    checkout_id: str
    amount: int
    currency: str
    reason: str | None
    applied_to_plan: int
    refunded_to_consumer: int
    created_at: datetime


async def refund(
    conn: asyncpg.Connection,
    *,
    checkout_id: str,
    merchant_id: str,
    amount: int,
    reason: str | None,
    at: datetime,
) -> Refund:
    checkout = await _merchants_checkout(conn, checkout_id, merchant_id)
    # A fully refunded checkout was captured: what it lacks is a refundable amount (422
    # below), not a capture. Only checkouts never captured are 409.
    if checkout.captured_amount is None:
        raise conflict("checkout_not_captured", "Only a captured checkout can be refunded.")
    if amount > checkout.refundable_amount:
        raise unprocessable(
            "amount_exceeds_refundable",
            f"At most {checkout.refundable_amount} can still be refunded.",
            "amount",
        )
    refund_id = new_id("ref")
    applied, to_consumer, payment_id = await _give_back(
        conn,
        checkout,
        amount,
        before_capture=False,
        kind="checkout.refunded",
        reference_id=refund_id,
        at=at,
    )
    row = await repo.insert_refund(
        conn,
        refund_id=refund_id,
        checkout_id=checkout.id,
        merchant_id=merchant_id,
        amount=amount,
        currency=checkout.currency,
        reason=reason,
        applied_to_plan=applied,
        refunded_to_consumer=to_consumer,
        payment_id=payment_id,
        at=at,
    )
    refunded = checkout.refunded_amount + amount
    assert checkout.captured_amount is not None
    checkout = await repo.update(
        conn,
        checkout.id,
        at,
        refunded_amount=refunded,
        status=status_after_refund(checkout.captured_amount, refunded),
    )
    await events.emit(
        conn,
        events.REFUNDED,
        checkout,
        at=at,
        extra={"refund_id": refund_id, "refund_amount": amount},
    )
    return refund_of(row)


def refund_of(row: asyncpg.Record) -> Refund:
    return Refund(
        id=row["id"],
        checkout_id=row["checkout_id"],
        amount=row["amount"],
        currency=row["currency"],
        reason=row["reason"],
        applied_to_plan=row["applied_to_plan"],
        refunded_to_consumer=row["refunded_to_consumer"],
        created_at=row["created_at"],
    )


async def list_refunds(
    conn: asyncpg.Connection, checkout_id: str, *, after: str | None, limit: int
) -> Sequence[Refund]:
    return [
        refund_of(r) for r in await repo.list_refunds(conn, checkout_id, after=after, limit=limit)
    ]


async def _merchants_checkout(
    conn: asyncpg.Connection, checkout_id: str, merchant_id: str
) -> Checkout:
    checkout = await repo.get(conn, checkout_id, lock=True)
    if checkout is None or checkout.merchant_id != merchant_id:
        raise not_found("checkout")
    return checkout
