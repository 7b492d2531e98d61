"""Request and response models of the merchants API.

Numbers are integers (a string or a fraction is refused, never coerced: money and rates are
integers of minor units and basis points; a whole JSON number such as `30.0` is that integer,
`kit.wire.Integer`). The OpenAPI document states the same rules as the validators (patterns,
the country codes), so that a request valid by the document is valid here. Unknown fields are
refused so that a typo in a config field never silently leaves the default in force.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from bnpl.kit.money import MAX_AMOUNT
from bnpl.kit.wire import Integer
from bnpl.merchants.domain import (
    CONFIG_FIELDS,
    COUNTRIES,
    MAX_BPS,
    MAX_FIXED_FEE,
    ApiKey,
    MerchantProfile,
)

PlanName = Literal["pay_in_4", "monthly_6", "monthly_12"]
Currency = Literal["USD", "EUR", "GBP", "CAD", "AUD"]  # kit.money.SUPPORTED_CURRENCIES

_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
_EMAIL = re.compile(_EMAIL_PATTERN)
# An http(s) URL with a host name (or IPv4 address) and an optional port, path, query.
_WEBSITE_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#]\S*)?$"
_WEBSITE = re.compile(_WEBSITE_PATTERN)


def _country(value: str) -> str:
    if value not in COUNTRIES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. US")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an email address")
    return value


def _website(value: str) -> str:
    if not _WEBSITE.match(value) or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL, e.g. https://shop.example")
    return value


Bps = Annotated[Integer, Field(ge=0, le=MAX_BPS)]
Amount = Annotated[Integer, Field(ge=0, le=MAX_AMOUNT)]
Country = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2),
    AfterValidator(_country),
    Field(json_schema_extra={"enum": sorted(COUNTRIES)}),
]
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254),
    AfterValidator(_email),
    Field(json_schema_extra={"pattern": _EMAIL_PATTERN}),
]
Website = Annotated[
    str,
    StringConstraints(max_length=2048),
    AfterValidator(_website),
    Field(json_schema_extra={"pattern": _WEBSITE_PATTERN}),
]


class ConfigIn(BaseModel):
    """Commercial terms; every field is optional and `null` restores the default."""

    model_config = ConfigDict(extra="forbid")

    plans: Annotated[list[PlanName], Field(min_length=1, max_length=10)] | None = None
    mdr_bps: Bps | None = None
    fixed_fee: Annotated[Integer, Field(ge=0, le=MAX_FIXED_FEE)] | None = None
    monthly_apr_bps: Bps | None = None
    min_amount: Amount | None = None
    max_amount: Amount | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (a None value: back to the default)."""
        return {
            name: getattr(self, name) for name in CONFIG_FIELDS if name in self.model_fields_set
        }


class SettlementAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{4,34}$")]
    routing_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,34}$")] | None = None


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    website: Website | None = None
    email: Email
    country: Country
    mcc: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
    default_currency: Currency
    settlement_account: SettlementAccountIn
    config: ConfigIn | None = None


class MerchantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: ConfigIn | None = None
    status: Literal["active", "suspended"] | None = None


class SettlementAccountOut(BaseModel):
    account_last4: str
    routing_number: str | None


class ConfigOut(BaseModel):
    plans: list[str]
    mdr_bps: int
    fixed_fee: int
    monthly_apr_bps: int
    min_amount: int
    max_amount: int


class MerchantOut(BaseModel):
    id: str
    status: str
    legal_name: str
    website: str | None
    email: str
    country: str
    mcc: str
    default_currency: str
    settlement_account: SettlementAccountOut
    config: ConfigOut
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, merchant: MerchantProfile) -> MerchantOut:
        minimum, maximum = merchant.config.amount_range
        return cls(
            id=merchant.id,
            status=merchant.status.value,
            legal_name=merchant.legal_name,
            website=merchant.website,
            email=merchant.email,
            country=merchant.country,
            mcc=merchant.mcc,
            default_currency=merchant.default_currency,
            settlement_account=SettlementAccountOut(
                account_last4=merchant.account_last4, routing_number=merchant.routing_number
            ),
            config=ConfigOut(
                plans=list(merchant.config.plans),
                mdr_bps=merchant.config.mdr_bps,
                fixed_fee=merchant.config.fixed_fee,
                monthly_apr_bps=merchant.config.monthly_apr_bps,
                min_amount=minimum,
                max_amount=maximum,
            ),
            rejection_reason=merchant.rejection_reason,
            created_at=merchant.created_at,
            updated_at=merchant.updated_at,
        )


class ApiKeyCreated(BaseModel):
    id: str
    merchant_id: str
    secret: str | None = Field(
        description="Shown only in this answer. Null in an Idempotency-Key replay: the secret "
        "is never stored, not even in the replay record."
    )
    livemode: bool
    created_at: datetime


class ApiKeyOut(BaseModel):
    id: str
    merchant_id: str
    livemode: bool
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            merchant_id=key.merchant_id,
            livemode=key.livemode,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
