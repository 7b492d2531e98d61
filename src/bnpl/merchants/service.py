"""Merchant use cases. Each writes its state and its outbox events in the caller's transaction
and never commits: the request (`command()`) or the consumer's transaction does."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from bnpl import audit
from bnpl.gateway.principals import Merchant
from bnpl.kit.db import Database
from bnpl.kit.errors import FieldError, ProblemError, conflict, not_found
from bnpl.kit.ids import new_id
from bnpl.merchants import crypto, events, repository
from bnpl.merchants.domain import (
    API_KEY_BYTES,
    ApiKey,
    Config,
    InvalidConfig,
    InvalidStatusTransition,
    MerchantConfig,
    MerchantProfile,
    MerchantStatus,
    hash_secret,
    last4,
    operator_transition,
    verification_transition,
)
from bnpl.merchants.schemas import MerchantCreate, MerchantPatch

DEFAULT_REJECTION_REASON = "business_verification_failed"


def _config(base: Config, changes: Mapping[str, Any]) -> Config:
    try:
        return base.merged(changes).validate()
    except InvalidConfig as exc:
        raise ProblemError(
            422,
            "validation_error",
            "The merchant config is not valid.",
            [FieldError(f"config.{name}", message) for name, message in exc.errors],
        ) from exc


async def _locked(conn: asyncpg.Connection, merchant_id: str) -> MerchantProfile:
    merchant = await repository.get_merchant(conn, merchant_id, for_update=True)
    if merchant is None:
        raise not_found("merchant")
    return merchant


async def create_merchant(
    conn: asyncpg.Connection, data: MerchantCreate, *, at: datetime, aes_key: bytes
) -> MerchantProfile:
    """A new merchant, `pending_review` until business verification decides."""
    config = _config(Config(), data.config.changes() if data.config else {})
    merchant_id = new_id("mer")
    account = data.settlement_account
    merchant = MerchantProfile(
        id=merchant_id,
        status=MerchantStatus.PENDING_REVIEW,
        legal_name=data.legal_name,
        website=data.website,
        email=data.email,
        country=data.country,
        mcc=data.mcc,
        default_currency=data.default_currency,
        account_ciphertext=crypto.encrypt(aes_key, account.account_number, bound_to=merchant_id),
        account_last4=last4(account.account_number),
        routing_number=account.routing_number,
        config=config,
        rejection_reason=None,
        created_at=at,
        updated_at=at,
    )
    await repository.insert_merchant(conn, merchant)
    await events.emit(conn, events.MERCHANT_APPLIED, merchant, at=at)
    return merchant


async def get_merchant(conn: asyncpg.Connection, merchant_id: str) -> MerchantProfile:
    merchant = await repository.get_merchant(conn, merchant_id)
    if merchant is None:
        raise not_found("merchant")
    return merchant


async def list_merchants(
    conn: asyncpg.Connection, *, status: str | None, after: str | None, limit: int
) -> list[MerchantProfile]:
    return await repository.list_merchants(conn, status=status, after=after, limit=limit)


async def update_merchant(
    conn: asyncpg.Connection, merchant_id: str, patch: MerchantPatch, *, at: datetime
) -> tuple[MerchantProfile, dict[str, Any]]:
    """Apply an operator's change of config and/or status; returns the merchant and what
    changed (for the audit record)."""
    merchant = await _locked(conn, merchant_id)
    changed: dict[str, Any] = {}

    if patch.config is not None:
        config = _config(merchant.config, patch.config.changes())
        if config != merchant.config:
            await repository.update_config(conn, merchant_id, config, at)
            merchant = replace(merchant, config=config, updated_at=at)
            changed["config"] = patch.config.changes()
            await events.emit(conn, events.MERCHANT_CONFIG_UPDATED, merchant, at=at)

    if patch.status is not None:
        try:
            target = operator_transition(merchant.status, MerchantStatus(patch.status))
        except InvalidStatusTransition as exc:
            raise conflict("invalid_status_transition", str(exc)) from exc
        if target is not None:
            await repository.update_status(conn, merchant_id, target, at)
            changed["status"] = {"from": merchant.status.value, "to": target.value}
            merchant = replace(merchant, status=target, updated_at=at)
            kind = (
                events.MERCHANT_SUSPENDED
                if target is MerchantStatus.SUSPENDED
                else events.MERCHANT_REACTIVATED
            )
            await events.emit(conn, kind, merchant, at=at)
    return merchant, changed


async def apply_verification(
    conn: asyncpg.Connection,
    merchant_id: str,
    *,
    verified: bool,
    reason: str | None,
    reference: str | None,
    at: datetime,
) -> None:
    """Activate or reject a merchant on its business verification's outcome (once)."""
    merchant = await repository.get_merchant(conn, merchant_id, for_update=True)
    if merchant is None:
        return  # not ours (or not yet visible): nothing to decide
    target = verification_transition(merchant.status, verified)
    if target is None:
        return  # already decided; a redelivered outcome changes nothing
    rejection_reason = None if verified else (reason or DEFAULT_REJECTION_REASON)
    await repository.update_status(conn, merchant_id, target, at, rejection_reason=rejection_reason)
    merchant = replace(merchant, status=target, rejection_reason=rejection_reason, updated_at=at)
    kind = events.MERCHANT_ACTIVATED if verified else events.MERCHANT_REJECTED
    await events.emit(conn, kind, merchant, at=at)
    await audit.record(
        conn,
        actor="system",
        action=kind,
        entity_id=merchant_id,
        at=at,
        data={"verification_reference": reference, "rejection_reason": rejection_reason},
    )


async def create_api_key(
    conn: asyncpg.Connection, merchant_id: str, *, at: datetime, livemode: bool
) -> tuple[ApiKey, str]:
    """A new secret key for an active merchant; returns it and its secret (shown once)."""
    merchant = await _locked(conn, merchant_id)
    if merchant.status is not MerchantStatus.ACTIVE:
        raise conflict(
            "merchant_not_active",
            f"API keys are only issued to active merchants; this one is {merchant.status}.",
        )
    prefix = "sk_live_" if livemode else "sk_test_"
    secret = prefix + secrets.token_urlsafe(API_KEY_BYTES)
    key = ApiKey(new_id("key"), merchant_id, livemode, at, None)
    await repository.insert_api_key(conn, key, hash_secret(secret))
    return key, secret


async def list_api_keys(
    conn: asyncpg.Connection, merchant_id: str, *, after: str | None, limit: int
) -> list[ApiKey]:
    """Up to `limit` of the merchant's keys after the key id `after`, in id order."""
    await get_merchant(conn, merchant_id)
    return await repository.list_api_keys(conn, merchant_id, after=after, limit=limit)


async def revoke_api_key(
    conn: asyncpg.Connection, merchant_id: str, key_id: str, *, at: datetime
) -> ApiKey:
    """Revoke a key; it stops working on the next request. Revoking twice changes nothing."""
    key = await repository.get_api_key(conn, merchant_id, key_id, for_update=True)
    if key is None:
        raise not_found("API key")
    if key.revoked_at is None:
        await repository.revoke_api_key(conn, key_id, at)
        key = replace(key, revoked_at=at)
    return key


def key_resolver(db: Database) -> Callable[[str], Awaitable[Merchant | None]]:
    """The gateway's resolver of `Bearer sk_...` secrets to a merchant principal."""

    async def resolve(secret: str) -> Merchant | None:
        if len(secret) > 200:
            return None
        async with db.connection() as conn:
            found = await repository.resolve_api_key(conn, hash_secret(secret))
        if found is None:
            return None
        key_id, merchant_id, status = found
        return Merchant(merchant_id, key_id, suspended=status is MerchantStatus.SUSPENDED)

    return resolve


async def merchant_config(conn: asyncpg.Connection, merchant_id: str) -> MerchantConfig | None:
    merchant = await repository.get_merchant(conn, merchant_id)
    return merchant.public_config() if merchant is not None else None


@dataclass(frozen=True, slots=True)
class SettlementAccount:
    account_number: str
    routing_number: str | None


async def settlement_account(
    conn: asyncpg.Connection, merchant_id: str, *, aes_key: bytes
) -> SettlementAccount | None:
    merchant = await repository.get_merchant(conn, merchant_id)
    if merchant is None:
        return None
    number = crypto.decrypt(aes_key, merchant.account_ciphertext, bound_to=merchant.id)
    return SettlementAccount(number, merchant.routing_number)
