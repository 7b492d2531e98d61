"""The checkout lifecycle (DOMAIN.md, "Checkout lifecycle"), pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

from bnpl.kit.money import basis_points_of

OPEN_FOR: Final = timedelta(hours=1)
AUTHORIZATION_VALID_FOR: Final = timedelta(days=7)


class CheckoutStatus(StrEnum):
    OPEN = "open"
    CONFIRMING = "confirming"  # internal: the down payment is in flight
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"

    @property
    def public(self) -> str:
        """What the API shows: a confirmation in flight is still `open` to the outside."""
        return "open" if self is CheckoutStatus.CONFIRMING else self.value

    @property
    def refundable(self) -> bool:
        return self in (CheckoutStatus.CAPTURED, CheckoutStatus.PARTIALLY_REFUNDED)


class CheckoutStatusFilter(StrEnum):
    """The statuses a merchant can list by (`confirming` shows as `open`)."""

    OPEN = "open"
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Checkout:
    id: str
    merchant_id: str
    consumer_id: str | None
    amount: int
    currency: str
    merchant_reference: str | None
    items: list[dict[str, Any]] | None
    consumer_email: str | None
    success_url: str | None
    cancel_url: str | None
    status: CheckoutStatus
    expires_at: datetime
    plan_kind: str | None
    plan_id: str | None
    decision_id: str | None
    decision_outcome: str | None
    decline_reasons: list[str] | None
    down_payment_id: str | None
    authorized_at: datetime | None
    authorization_expires_at: datetime | None
    captured_amount: int | None
    captured_at: datetime | None
    fee_amount: int
    refunded_amount: int
    created_at: datetime

    @property
    def refundable_amount(self) -> int:
        return (self.captured_amount or 0) - self.refunded_amount


@dataclass(frozen=True, slots=True)
class PlanOption:
    plan: str
    installment_amount: int
    installments: int
    apr_bps: int


def merchant_fee(captured: int, mdr_bps: int, fixed_fee: int) -> int:
    """`round_half_up(C * mdr_bps / 10000) + fixed_fee` (DOMAIN.md)."""
    return basis_points_of(captured, mdr_bps) + fixed_fee


def status_after_refund(captured: int, refunded: int) -> CheckoutStatus:
    return CheckoutStatus.REFUNDED if refunded >= captured else CheckoutStatus.PARTIALLY_REFUNDED


@lru_cache(maxsize=4)
def _hosted_key(key: bytes) -> bytes:
    return hashlib.sha256(b"bnpl-hosted-checkout:" + key).digest()


def hosted_token(key: bytes, checkout_id: str) -> str:
    """The capability in a checkout's `redirect_url`: whoever holds the link may see the
    checkout's page (amount, items, plans) before signing in; ids alone are not secrets."""
    digest = hmac.new(_hosted_key(key), checkout_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def hosted_token_valid(key: bytes, checkout_id: str, token: str) -> bool:
    return hmac.compare_digest(hosted_token(key, checkout_id).encode(), token.encode())


def hosted_path(key: bytes, checkout_id: str) -> str:
    """The hosted checkout page of a checkout, relative to the platform's public URL."""
    return f"/checkout/{checkout_id}?token={hosted_token(key, checkout_id)}"
