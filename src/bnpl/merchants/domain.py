"""Pure merchant rules: the status machine, the config and its limits (no I/O).

The plans' amount ranges are DOMAIN.md's ("Plans"). A merchant may disable plans and narrow
the range, never widen it: its range must lie inside the widest range of its enabled plans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

# DOMAIN.md, "Plans". Kept here (not imported from installments) so that merchants depends on
# no other context; a test checks the two tables agree.
PLAN_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    "pay_in_4": (1_000, 200_000),
    "monthly_6": (5_000, 1_000_000),
    "monthly_12": (5_000, 1_000_000),
}
PLANS: Final[tuple[str, ...]] = tuple(PLAN_RANGES)

# DOMAIN.md, "Merchant fees and settlement".
DEFAULT_MDR_BPS: Final = 399
DEFAULT_FIXED_FEE: Final = 30
DEFAULT_MONTHLY_APR_BPS: Final = 0
MAX_BPS: Final = 10_000
MAX_FIXED_FEE: Final = 100_000  # 1,000.00 per capture: far above any real fee, a typo guard

# ISO 3166-1 alpha-2, the officially assigned codes.
_COUNTRY_CODES: Final = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES: Final = frozenset(_COUNTRY_CODES.split())

API_KEY_BYTES: Final = 32  # bytes of randomness in a secret key


class MerchantStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    ACTIVE = "active"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class InvalidStatusTransition(Exception):
    """The requested status cannot be reached from the current one."""

    def __init__(self, current: MerchantStatus, target: MerchantStatus) -> None:
        super().__init__(f"a merchant that is {current} cannot become {target}")
        self.current = current
        self.target = target


def operator_transition(current: MerchantStatus, target: MerchantStatus) -> MerchantStatus | None:
    """The status an operator's request leads to; None when nothing changes.

    Operators only move a merchant between `active` and `suspended`: activation and rejection
    are KYB's, and a rejected merchant applies again as a new merchant.
    """
    if current is target and current in (MerchantStatus.ACTIVE, MerchantStatus.SUSPENDED):
        return None
    allowed = {
        (MerchantStatus.ACTIVE, MerchantStatus.SUSPENDED),
        (MerchantStatus.SUSPENDED, MerchantStatus.ACTIVE),
    }
    if (current, target) not in allowed:
        raise InvalidStatusTransition(current, target)
    return target


def verification_transition(current: MerchantStatus, verified: bool) -> MerchantStatus | None:
    """The status a KYB outcome leads to; None when the merchant was already decided."""
    if current is not MerchantStatus.PENDING_REVIEW:
        return None
    return MerchantStatus.ACTIVE if verified else MerchantStatus.REJECTED


class InvalidConfig(ValueError):
    """A merchant config breaks a rule; `errors` holds (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


CONFIG_FIELDS: Final = (
    "plans",
    "mdr_bps",
    "fixed_fee",
    "monthly_apr_bps",
    "min_amount",
    "max_amount",
)


@dataclass(frozen=True, slots=True)
class Config:
    """A merchant's commercial terms as stored.

    `min_amount` / `max_amount` of None mean "the widest range of the enabled plans", so a
    merchant that never narrowed its range follows its plans when they change.
    """

    plans: tuple[str, ...] = PLANS
    mdr_bps: int = DEFAULT_MDR_BPS
    fixed_fee: int = DEFAULT_FIXED_FEE
    monthly_apr_bps: int = DEFAULT_MONTHLY_APR_BPS
    min_amount: int | None = None
    max_amount: int | None = None

    @property
    def plans_range(self) -> tuple[int, int]:
        """The widest range of the enabled plans."""
        ranges = [PLAN_RANGES[p] for p in self.plans if p in PLAN_RANGES] or list(
            PLAN_RANGES.values()
        )
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def amount_range(self) -> tuple[int, int]:
        """The range in force: the merchant's own bounds, else its plans'."""
        low, high = self.plans_range
        return (
            self.min_amount if self.min_amount is not None else low,
            self.max_amount if self.max_amount is not None else high,
        )

    def merged(self, changes: Mapping[str, Any]) -> Config:
        """This config with `changes` applied; a None value restores that field's default."""
        defaults = Config()
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in CONFIG_FIELDS:
                raise InvalidConfig([(name, "is not a config field")])
            if value is None:
                values[name] = getattr(defaults, name)
            elif name == "plans":
                values[name] = _unique(value)
            else:
                values[name] = value
        return replace(self, **values)

    def validate(self) -> Config:
        """Return self if every rule holds; raise `InvalidConfig` listing every broken rule."""
        errors: list[tuple[str, str]] = []
        if not self.plans:
            errors.append(("plans", "enable at least one plan"))
        unknown = [p for p in self.plans if p not in PLAN_RANGES]
        if unknown:
            errors.append(("plans", f"unknown plan(s): {', '.join(unknown)}"))
        for name in ("mdr_bps", "monthly_apr_bps"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_BPS:
                errors.append((name, f"must be between 0 and {MAX_BPS} basis points"))
        if not 0 <= self.fixed_fee <= MAX_FIXED_FEE:
            errors.append(("fixed_fee", f"must be between 0 and {MAX_FIXED_FEE}"))
        if not errors:
            errors.extend(self._range_errors())
        if errors:
            raise InvalidConfig(errors)
        return self

    def _range_errors(self) -> list[tuple[str, str]]:
        low, high = self.plans_range
        minimum, maximum = self.amount_range
        errors: list[tuple[str, str]] = []
        if not low <= minimum <= high:
            errors.append(("min_amount", f"must be within the enabled plans' range {low}-{high}"))
        if not low <= maximum <= high:
            errors.append(("max_amount", f"must be within the enabled plans' range {low}-{high}"))
        if not errors and minimum > maximum:
            errors.append(("min_amount", "must not be greater than max_amount"))
        return errors


def _unique(plans: Any) -> tuple[str, ...]:
    # Duplicates are harmless: keep the first of each, in the order given.
    return tuple(dict.fromkeys(plans))


@dataclass(frozen=True, slots=True)
class MerchantConfig:
    """What other contexts need to know about a merchant to sell on its behalf.

    `min_amount` / `max_amount` are the range in force (the plans' widest range unless the
    merchant narrowed it). A checkout amount must also fit the chosen plan's own range: use
    `amount_range(plan)`.
    """

    merchant_id: str
    status: str
    legal_name: str
    mcc: str
    default_currency: str
    plans: tuple[str, ...]
    mdr_bps: int
    fixed_fee: int
    monthly_apr_bps: int
    min_amount: int
    max_amount: int

    @property
    def is_active(self) -> bool:
        return self.status == MerchantStatus.ACTIVE

    def amount_range(self, plan: str) -> tuple[int, int] | None:
        """The amounts this merchant may finance with `plan`: the plan's range narrowed by
        the merchant's; None if the plan is not enabled or the two do not overlap."""
        if plan not in self.plans or plan not in PLAN_RANGES:
            return None
        low, high = PLAN_RANGES[plan]
        low, high = max(low, self.min_amount), min(high, self.max_amount)
        return (low, high) if low <= high else None


def hash_secret(secret: str) -> bytes:
    """The stored form of an API key secret.

    A fast hash is right here: the secret carries 256 bits of randomness, so it cannot be
    guessed offline, and a deterministic digest lets one indexed lookup resolve a key.
    """
    return hashlib.sha256(secret.encode()).digest()


def last4(account_number: str) -> str:
    return account_number[-4:]


@dataclass(frozen=True, slots=True)
class MerchantProfile:
    """A merchant as stored; the settlement account number only as ciphertext."""

    id: str
    status: MerchantStatus
    legal_name: str
    website: str | None
    email: str
    country: str
    mcc: str
    default_currency: str
    account_ciphertext: bytes
    account_last4: str
    routing_number: str | None
    config: Config
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime

    def public_config(self) -> MerchantConfig:
        minimum, maximum = self.config.amount_range
        return MerchantConfig(
            merchant_id=self.id,
            status=self.status.value,
            legal_name=self.legal_name,
            mcc=self.mcc,
            default_currency=self.default_currency,
            plans=self.config.plans,
            mdr_bps=self.config.mdr_bps,
            fixed_fee=self.config.fixed_fee,
            monthly_apr_bps=self.config.monthly_apr_bps,
            min_amount=minimum,
            max_amount=maximum,
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    merchant_id: str
    livemode: bool
    created_at: datetime
    revoked_at: datetime | None
