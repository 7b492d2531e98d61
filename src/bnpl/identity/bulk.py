"""Sandbox seeding: many KYC-verified consumers at once, each with a card and a live session.

Only for `POST /v1/sandbox/seed` (never in production). The rows are those that sign-up, KYC,
adding a card and logging in would leave: personal fields and card tokens encrypted as
`service.register_consumer` and `service.add_payment_method` encrypt them (bound to their row
and column), one argon2 hash of the seed's password shared by every consumer, sessions with a
refresh token stored as its SHA-256 and an access token signed as a login's. They are written
by COPY, a few statements whatever the count, and without events: no KYC is left to run and
nothing is announced to other contexts (the caller seeds what they keep: credit's accounts).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import orjson

from bnpl.identity import crypto
from bnpl.identity.domain import KycStatus, password_problem
from bnpl.identity.schemas import Address
from bnpl.kit.ids import new_id
from bnpl.providers import CardToken

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

SEED_FIRST_NAME: Final = "Ada"
SEED_LAST_NAME: Final = "Lovelace"
RISKY_LAST_NAME: Final = "Risky"  # the sandbox bureau's poor-score persona
SEED_PHONE: Final = "+14155550100"
SEED_DATE_OF_BIRTH: Final = date(1990, 12, 10)
SEED_ADDRESS: Final = Address(
    line1="1 Main St", city="Springfield", region="IL", postal_code="62701", country="US"
)
KYC_REFERENCE: Final = "sandbox_seed"  # no provider check ran: the consumer was seeded verified


@dataclass(frozen=True, slots=True)
class SeedPerson:
    """A consumer about to be seeded (for the bureau to be asked about before the insert)."""

    consumer_id: str
    email: str
    first_name: str
    last_name: str
    date_of_birth: date
    country: str


@dataclass(frozen=True, slots=True)
class SeededConsumer:
    """A seeded consumer's credentials, as a login and adding a card would have answered."""

    consumer_id: str
    email: str
    last_name: str
    payment_method_id: str
    access_token: str
    refresh_token: str


def seed_people(count: int, *, risky: int = 0) -> list[SeedPerson]:
    """`count` new consumers (no I/O); the last `risky` of them are the `Risky` persona."""
    if not 0 <= risky <= count:
        raise ValueError("risky must be between 0 and count")
    people = []
    for i in range(count):
        consumer_id = new_id("cus")
        people.append(
            SeedPerson(
                consumer_id=consumer_id,
                email=f"seed-{consumer_id[4:].lower()}@example.com",
                first_name=SEED_FIRST_NAME,
                last_name=RISKY_LAST_NAME if i >= count - risky else SEED_LAST_NAME,
                date_of_birth=SEED_DATE_OF_BIRTH,
                country=SEED_ADDRESS.country,
            )
        )
    return people


async def seed_password_hash(password: str) -> str:
    """The argon2 hash every seeded consumer shares (one hash, off the event loop);
    ValueError if the password breaks the policy."""
    problem = password_problem(password)
    if problem is not None:
        raise ValueError(problem)
    return await crypto.hash_password(password)


def _b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


_JWT_HEADER: Final = _b64url(b'{"alg":"HS256","typ":"JWT"}')


def _access_token(signer: Any, consumer_id: str, session_id: str, iat: int, exp: int) -> str:
    """What `crypto.issue_access_token` signs (the same claims, HS256), at a tenth of PyJWT's
    cost: a seed signs tens of thousands at once."""
    claims = {
        "iss": crypto.ISSUER,
        "sub": consumer_id,
        "sid": session_id,
        "jti": new_id("tok"),
        "iat": iat,
        "exp": exp,
    }
    signing_input = _JWT_HEADER + b"." + _b64url(orjson.dumps(claims))
    mac = signer.copy()
    mac.update(signing_input)
    return (signing_input + b"." + _b64url(mac.digest())).decode()


@dataclass
class _Rows:
    consumers: list[tuple[Any, ...]] = field(default_factory=list)
    methods: list[tuple[Any, ...]] = field(default_factory=list)
    sessions: list[tuple[Any, ...]] = field(default_factory=list)
    refresh_tokens: list[tuple[Any, ...]] = field(default_factory=list)
    seeded: list[SeededConsumer] = field(default_factory=list)


def _rows(
    rt: Runtime,
    people: Sequence[SeedPerson],
    cards: Sequence[CardToken],
    password_hash: str,
    at: datetime,
    now: datetime,
) -> _Rows:
    box = crypto.field_cipher(rt.settings.aes_key)
    signer = hmac.new(rt.settings.jwt_key, digestmod=hashlib.sha256)
    iat = int(now.timestamp())
    exp = int((now + timedelta(seconds=rt.settings.access_token_ttl_s)).timestamp())
    refresh_expires = now + timedelta(seconds=rt.settings.refresh_token_ttl_s)
    address_json = SEED_ADDRESS.model_dump_json()
    rows = _Rows()
    for person, card in zip(people, cards, strict=True):
        cid = person.consumer_id
        rows.consumers.append(
            (
                cid,
                person.email,
                password_hash,
                person.first_name,
                person.last_name,
                box.encrypt(SEED_PHONE, aad=crypto.aad("consumers", "phone", cid)),
                box.encrypt(
                    person.date_of_birth.isoformat(),
                    aad=crypto.aad("consumers", "date_of_birth", cid),
                ),
                box.encrypt(address_json, aad=crypto.aad("consumers", "address", cid)),
                KycStatus.VERIFIED.value,
                KYC_REFERENCE,
                at,
                at,
                at,
            )
        )
        pm_id = new_id("pm")
        rows.methods.append(
            (
                pm_id,
                cid,
                "card",
                box.encrypt(card.token, aad=crypto.aad("payment_methods", "token", pm_id)),
                (card.brand or "unknown").lower(),
                card.last4,
                card.exp_month,
                card.exp_year,
                at,
            )
        )
        session_id = new_id("ses")
        rows.sessions.append((session_id, cid, now))
        refresh_token = crypto.new_refresh_token()
        rows.refresh_tokens.append(
            (crypto.refresh_token_hash(refresh_token), session_id, cid, now, refresh_expires)
        )
        access = _access_token(signer, cid, session_id, iat, exp)
        rows.seeded.append(
            SeededConsumer(cid, person.email, person.last_name, pm_id, access, refresh_token)
        )
    return rows


async def seed_consumers(
    conn: asyncpg.Connection,
    rt: Runtime,
    people: Sequence[SeedPerson],
    cards: Sequence[CardToken],
    *,
    password_hash: str,
    at: datetime,
    now: datetime,
) -> list[SeededConsumer]:
    """Insert `people` as KYC-verified consumers (business time `at`), the i-th with card
    `cards[i]` and a session opened at wall time `now`; in the caller's transaction."""
    if len(cards) != len(people):
        raise ValueError("one card per person")
    # Encrypting and signing take a few seconds for 50,000 consumers: in a thread, so that
    # the event loop goes on serving meanwhile.
    rows = await asyncio.to_thread(_rows, rt, people, cards, password_hash, at, now)
    await conn.copy_records_to_table(
        "consumers",
        schema_name="identity",
        columns=[
            "id",
            "email",
            "password_hash",
            "first_name",
            "last_name",
            "phone_enc",
            "date_of_birth_enc",
            "address_enc",
            "kyc_status",
            "kyc_reference",
            "kyc_checked_at",
            "created_at",
            "updated_at",
        ],
        records=rows.consumers,
    )
    await conn.copy_records_to_table(
        "payment_methods",
        schema_name="identity",
        columns=[
            "id",
            "consumer_id",
            "type",
            "token_enc",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "created_at",
        ],
        records=rows.methods,
    )
    await conn.copy_records_to_table(
        "sessions",
        schema_name="identity",
        columns=["id", "consumer_id", "created_at"],
        records=rows.sessions,
    )
    await conn.copy_records_to_table(
        "refresh_tokens",
        schema_name="identity",
        columns=["token_hash", "session_id", "consumer_id", "issued_at", "expires_at"],
        records=rows.refresh_tokens,
    )
    return rows.seeded
