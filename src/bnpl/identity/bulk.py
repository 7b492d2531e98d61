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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
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


# Rows are built in chunks of this many consumers, in a thread, each while PostgreSQL takes
# the previous one through the same COPY: Python's encryption and signing and the database's
# index and foreign-key work overlap, and the event loop goes on serving meanwhile.
_CHUNK: Final = 5_000


class _Seeding:
    """The rows of one seed, table by table (consumers first: the others reference them)."""

    def __init__(
        self,
        rt: Runtime,
        people: Sequence[SeedPerson],
        cards: Sequence[CardToken],
        password_hash: str,
        at: datetime,
        now: datetime,
    ) -> None:
        self.people, self.cards = people, cards
        self.password_hash, self.at, self.now = password_hash, at, now
        self.box = crypto.field_cipher(rt.settings.aes_key)
        self.signer = hmac.new(rt.settings.jwt_key, digestmod=hashlib.sha256)
        self.iat = int(now.timestamp())
        self.exp = int((now + timedelta(seconds=rt.settings.access_token_ttl_s)).timestamp())
        self.refresh_expires = now + timedelta(seconds=rt.settings.refresh_token_ttl_s)
        self.address_json = SEED_ADDRESS.model_dump_json()
        count = len(people)
        self.payment_method_ids = [""] * count
        self.session_ids = [""] * count
        self.refresh_tokens = [""] * count
        self.access_tokens = [""] * count

    def consumers(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        box, at = self.box, self.at
        rows = []
        for person in self.people[lo:hi]:
            cid = person.consumer_id
            rows.append(
                (
                    cid,
                    person.email,
                    self.password_hash,
                    person.first_name,
                    person.last_name,
                    box.encrypt(SEED_PHONE, aad=crypto.aad("consumers", "phone", cid)),
                    box.encrypt(
                        person.date_of_birth.isoformat(),
                        aad=crypto.aad("consumers", "date_of_birth", cid),
                    ),
                    box.encrypt(self.address_json, aad=crypto.aad("consumers", "address", cid)),
                    KycStatus.VERIFIED.value,
                    KYC_REFERENCE,
                    at,
                    at,
                    at,
                )
            )
        return rows

    def payment_methods(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        rows = []
        for i in range(lo, hi):
            card, pm_id = self.cards[i], new_id("pm")
            self.payment_method_ids[i] = pm_id
            rows.append(
                (
                    pm_id,
                    self.people[i].consumer_id,
                    "card",
                    self.box.encrypt(card.token, aad=crypto.aad("payment_methods", "token", pm_id)),
                    (card.brand or "unknown").lower(),
                    card.last4,
                    card.exp_month,
                    card.exp_year,
                    self.at,
                )
            )
        return rows

    def sessions(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        rows = []
        for i in range(lo, hi):
            session_id = self.session_ids[i] = new_id("ses")
            rows.append((session_id, self.people[i].consumer_id, self.now))
        return rows

    def refresh_token_rows(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        rows = []
        for i in range(lo, hi):
            cid, session_id = self.people[i].consumer_id, self.session_ids[i]
            token = self.refresh_tokens[i] = crypto.new_refresh_token()
            self.access_tokens[i] = _access_token(self.signer, cid, session_id, self.iat, self.exp)
            rows.append(
                (crypto.refresh_token_hash(token), session_id, cid, self.now, self.refresh_expires)
            )
        return rows

    def seeded(self) -> list[SeededConsumer]:
        return [
            SeededConsumer(
                person.consumer_id,
                person.email,
                person.last_name,
                self.payment_method_ids[i],
                self.access_tokens[i],
                self.refresh_tokens[i],
            )
            for i, person in enumerate(self.people)
        ]


async def _streamed(
    build: Callable[[int, int], list[tuple[Any, ...]]], count: int
) -> AsyncIterator[tuple[Any, ...]]:
    """`build(lo, hi)`'s rows for [0, count) in chunks, the next chunk built (in a thread)
    while the rows of the previous one are sent."""
    bounds = [(lo, min(lo + _CHUNK, count)) for lo in range(0, count, _CHUNK)]
    pending = asyncio.ensure_future(asyncio.to_thread(build, *bounds[0]))
    for k in range(len(bounds)):
        rows = await pending
        if k + 1 < len(bounds):
            pending = asyncio.ensure_future(asyncio.to_thread(build, *bounds[k + 1]))
        for row in rows:
            yield row


_TABLES: Final = (
    (
        "consumers",
        "consumers",
        (
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
        ),
    ),
    (
        "payment_methods",
        "payment_methods",
        (
            "id",
            "consumer_id",
            "type",
            "token_enc",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "created_at",
        ),
    ),
    ("sessions", "sessions", ("id", "consumer_id", "created_at")),
    (
        "refresh_tokens",
        "refresh_token_rows",
        ("token_hash", "session_id", "consumer_id", "issued_at", "expires_at"),
    ),
)


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
    `cards[i]` and a session opened at wall time `now`; in the caller's transaction. One
    COPY per table."""
    if len(cards) != len(people):
        raise ValueError("one card per person")
    if not people:
        return []
    seeding = _Seeding(rt, people, cards, password_hash, at, now)
    for table, builder, columns in _TABLES:
        await conn.copy_records_to_table(
            table,
            schema_name="identity",
            columns=list(columns),
            records=_streamed(getattr(seeding, builder), len(people)),
        )
    return seeding.seeded()
