"""Request and response models of the identity endpoints.

Every request model forbids unknown fields and hides its input in validation errors (passwords
and card numbers must never be echoed, not even in an error message or a log line); secrets are
`SecretStr`, so an accidental `repr` or log of the model shows `**********`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from pydantic.config import JsonDict

from bnpl.identity.domain import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, KycStatus
from bnpl.kit.wire import Integer

# The currency of credit limits. A consumer's credit is one amount in the platform's home
# currency; plans in other currencies count against it at face value (DOMAIN.md supports only
# two-decimal currencies, so minor units compare directly).
CREDIT_CURRENCY = "USD"
# The highest credit limit an operator may set: 100x the largest plan (DOMAIN.md).
MAX_CREDIT_LIMIT = 100_000_000

# The password policy's length, documented (the service answers 422 `weak_password`).
PASSWORD_LENGTH: JsonDict = {"minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH}

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=254,
        pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$",
    ),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+[1-9][0-9]{6,14}$")]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Country = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class Address(_Request):
    line1: Line
    line2: Line | None = None
    city: Line
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)
    ]
    country: Country = Field(description="ISO 3166-1 alpha-2")


class ConsumerCreate(_Request):
    email: Email
    phone: Phone | None = Field(default=None, description="E.164, e.g. +14155550100")
    # The length is checked by the service (422 `weak_password`), and documented here.
    password: SecretStr = Field(
        description="At least 10 characters.", json_schema_extra=PASSWORD_LENGTH
    )
    first_name: Name
    last_name: Name
    date_of_birth: date
    address: Address


class ConsumerOut(BaseModel):
    id: str
    email: str
    phone: str | None
    first_name: str
    last_name: str
    date_of_birth: date
    address: Address
    kyc_status: KycStatus
    credit_limit: int = Field(description="Minor units of `currency`.")
    available_credit: int = Field(description="Credit limit minus open principal, at least 0.")
    currency: str = CREDIT_CURRENCY
    created_at: datetime


class CreditLimitSet(_Request):
    amount: Annotated[Integer, Field(ge=0, le=MAX_CREDIT_LIMIT)]
    currency: Literal["USD"] = Field(
        default="USD", description="Optional; credit limits are in USD."
    )


class LoginRequest(_Request):
    email: Annotated[str, StringConstraints(max_length=254)]
    password: Annotated[SecretStr, Field(max_length=4096)]


class RefreshRequest(_Request):
    refresh_token: Annotated[SecretStr, Field(min_length=1, max_length=512)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme)
    expires_in: int


class CardIn(_Request):
    number: Annotated[SecretStr, Field(max_length=32)]
    exp_month: Integer
    exp_year: Integer
    cvc: Annotated[SecretStr, Field(max_length=8)]


class PaymentMethodCreate(_Request):
    type: Literal["card"]
    card: CardIn


class PaymentMethodOut(BaseModel):
    id: str
    type: Literal["card"] = "card"
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    created_at: datetime
