"""Sandbox seeding: many active merchants at once, each with a secret API key.

Only for `POST /v1/sandbox/seed` (never in production). Each merchant is what an application
that passed business verification leaves, with the default config (every plan, DOMAIN.md's
fees) and its settlement account encrypted as `service.create_merchant` encrypts it, plus one
test key stored as its SHA-256 like `service.create_api_key`'s. Written by COPY, two
statements whatever the count, and without events: no KYB is left to run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from bnpl.kit.ids import new_id
from bnpl.merchants import crypto
from bnpl.merchants.domain import API_KEY_BYTES, Config, MerchantStatus, hash_secret, last4

SEED_ACCOUNT_NUMBER: Final = "000123456789"
SEED_ROUTING_NUMBER: Final = "110000000"
SEED_MCC: Final = "5941"  # sporting goods


@dataclass(frozen=True, slots=True)
class SeededMerchant:
    merchant_id: str
    api_key_id: str
    secret: str  # shown once, as `POST /v1/merchants/{id}/api_keys` shows it


async def seed_merchants(
    conn: asyncpg.Connection, count: int, *, aes_key: bytes, at: datetime, currency: str = "USD"
) -> list[SeededMerchant]:
    """Insert `count` active merchants with one test API key each, in the caller's
    transaction."""
    config = Config()
    merchants, keys, seeded = [], [], []
    for _ in range(count):
        merchant_id = new_id("mer")
        suffix = merchant_id[4:].lower()
        merchants.append(
            (
                merchant_id,
                MerchantStatus.ACTIVE.value,
                f"Seed Merchant {suffix} LLC",
                f"https://{suffix}.example",
                f"ops-{suffix}@example.com",
                "US",
                SEED_MCC,
                currency,
                crypto.encrypt(aes_key, SEED_ACCOUNT_NUMBER, bound_to=merchant_id),
                last4(SEED_ACCOUNT_NUMBER),
                SEED_ROUTING_NUMBER,
                list(config.plans),
                config.mdr_bps,
                config.fixed_fee,
                config.monthly_apr_bps,
                config.min_amount,
                config.max_amount,
                at,
                at,
            )
        )
        key_id, secret = new_id("key"), "sk_test_" + secrets.token_urlsafe(API_KEY_BYTES)
        keys.append((key_id, merchant_id, hash_secret(secret), False, at))
        seeded.append(SeededMerchant(merchant_id, key_id, secret))
    await conn.copy_records_to_table(
        "merchants",
        schema_name="merchants",
        columns=[
            "id",
            "status",
            "legal_name",
            "website",
            "email",
            "country",
            "mcc",
            "default_currency",
            "account_ciphertext",
            "account_last4",
            "routing_number",
            "plans",
            "mdr_bps",
            "fixed_fee",
            "monthly_apr_bps",
            "min_amount",
            "max_amount",
            "created_at",
            "updated_at",
        ],
        records=merchants,
    )
    await conn.copy_records_to_table(
        "api_keys",
        schema_name="merchants",
        columns=["id", "merchant_id", "secret_hash", "livemode", "created_at"],
        records=keys,
    )
    return seeded
