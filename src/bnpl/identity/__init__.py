"""Identity: consumers, credentials, sessions, KYC status and payment methods (tokens only).

The public facade; other contexts import only from here, and pass ids and plain data.

- `register(rt)`: subscribes `identity.verify_kyc` and provides the gateway's access-token
  resolver. It also keys the facade functions below with the runtime's encryption key, so
  it must run (contexts.register_all does) before they are called.
- `consumer_facts(conn, consumer_id) -> ConsumerFacts | None`
- `consumer_id_by_email(conn, email) -> str | None`
- `payment_method_token(conn, consumer_id, pm_id, *, include_deleted=False) -> str | None`
- Event types: `CONSUMER_REGISTERED` (internal), `CONSUMER_KYC_VERIFIED`,
  `CONSUMER_KYC_REJECTED` (public), `PAYMENT_METHOD_ADDED`, `PAYMENT_METHOD_REMOVED` (internal);
  `PUBLIC_TYPES` is the set of those that `GET /v1/events` may show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import asyncpg

from bnpl.identity import bulk as bulk  # sandbox seeding only (POST /v1/sandbox/seed)
from bnpl.identity import crypto, handlers, service
from bnpl.identity import repository as repo
from bnpl.identity.domain import KycStatus
from bnpl.identity.events import (
    CONSUMER_KYC_REJECTED,
    CONSUMER_KYC_VERIFIED,
    CONSUMER_REGISTERED,
    PAYMENT_METHOD_ADDED,
    PAYMENT_METHOD_REMOVED,
    PUBLIC_TYPES,
)
from bnpl.identity.schemas import PASSWORD_LENGTH

if TYPE_CHECKING:
    from bnpl.gateway import Consumer
    from bnpl.runtime import Runtime

__all__ = [
    "CONSUMER_KYC_REJECTED",
    "CONSUMER_KYC_VERIFIED",
    "CONSUMER_REGISTERED",
    "PASSWORD_LENGTH",
    "PAYMENT_METHOD_ADDED",
    "PAYMENT_METHOD_REMOVED",
    "PUBLIC_TYPES",
    "ConsumerFacts",
    "KycStatus",
    "consumer_facts",
    "consumer_id_by_email",
    "consumers_facts",
    "payment_method_token",
    "payment_method_tokens",
    "register",
]

_cipher: crypto.FieldCipher | None = None


def _box() -> crypto.FieldCipher:
    if _cipher is None:
        raise RuntimeError("bnpl.identity.register(rt) has not run in this process")
    return _cipher


def register(rt: Runtime) -> None:
    """Wire identity into a runtime: its event consumer and the access-token resolver."""
    global _cipher
    _cipher = crypto.field_cipher(rt.settings.aes_key)
    handlers.subscribe(rt)

    async def resolve_access_token(token: str) -> Consumer | None:
        return await service.resolve_access_token(rt, token)

    rt.resolvers.access_token = resolve_access_token


@dataclass(frozen=True, slots=True)
class ConsumerFacts:
    """What other contexts may know about a consumer (credit decisions, notifications)."""

    consumer_id: str
    email: str
    phone: str | None  # E.164, if the consumer gave one
    first_name: str
    last_name: str
    date_of_birth: date
    country: str  # ISO 3166-1 alpha-2, from the address
    kyc_status: KycStatus
    created_at: datetime


async def consumer_facts(conn: asyncpg.Connection, consumer_id: str) -> ConsumerFacts | None:
    """A consumer's KYC status, decrypted date of birth and phone, email and names; None if
    unknown.

    Read on the caller's connection, so inside its transaction when it has one.
    """
    row = await repo.get_consumer(conn, consumer_id)
    return None if row is None else _facts(row)


async def consumers_facts(
    conn: asyncpg.Connection, consumer_ids: Iterable[str]
) -> dict[str, ConsumerFacts]:
    """`consumer_facts` of many consumers in one statement, by id (the unknown left out)."""
    rows = await repo.get_consumers(conn, sorted(set(consumer_ids)))
    return {row["id"]: _facts(row) for row in rows}


def _facts(row: asyncpg.Record) -> ConsumerFacts:
    clear = service.decrypt_consumer(_box(), row)
    return ConsumerFacts(
        consumer_id=row["id"],
        email=row["email"],
        phone=clear.phone,
        first_name=row["first_name"],
        last_name=row["last_name"],
        date_of_birth=clear.date_of_birth,
        country=clear.address.country,
        kyc_status=KycStatus(row["kyc_status"]),
        created_at=row["created_at"],
    )


async def consumer_id_by_email(conn: asyncpg.Connection, email: str) -> str | None:
    """The id of the consumer with this email (compared case-insensitively), if any."""
    return await repo.consumer_id_by_email(conn, email.strip())


async def payment_method_token(
    conn: asyncpg.Connection,
    consumer_id: str | None,
    pm_id: str,
    *,
    include_deleted: bool = False,
) -> str | None:
    """The gateway token of payment method `pm_id`, decrypted, to charge or refund with.

    None when there is no such payment method, it belongs to another consumer, or it was
    deleted (unless `include_deleted`, e.g. to refund a charge made before the deletion).
    `consumer_id=None` skips the ownership check: only for operator and system use.
    """
    row = await repo.payment_method_token(conn, pm_id, consumer_id, include_deleted=include_deleted)
    if row is None:
        return None
    return _box().decrypt(
        bytes(row["token_enc"]), aad=crypto.aad("payment_methods", "token", row["id"])
    )


async def payment_method_tokens(
    conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """`payment_method_token` for many `(consumer_id, pm_id)` at once: pm_id -> token, for
    the live payment methods among them that belong to their consumer."""
    box = _box()
    return {
        row["id"]: box.decrypt(
            bytes(row["token_enc"]), aad=crypto.aad("payment_methods", "token", row["id"])
        )
        for row in await repo.payment_method_tokens(conn, pairs)
    }
