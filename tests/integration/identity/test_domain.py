"""Pure rules and crypto helpers of identity (no database, no app)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bnpl.identity import crypto
from bnpl.identity.domain import (
    KycStatus,
    card_brand,
    card_problems,
    is_expired,
    kyc_transition_allowed,
    luhn_ok,
    normalize_email,
    password_problem,
)

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("4242424242424242", True),
        ("4242424242424241", False),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("0000000000000000", True),
        ("42424242424242a2", False),
        ("\uff14\uff12\uff14\uff12", False),  # full-width digits are not digits here
    ],
)
def test_luhn(number: str, ok: bool) -> None:
    assert luhn_ok(number) is ok


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("9999999999999995", "unknown"),
    ],
)
def test_card_brand(number: str, brand: str) -> None:
    assert card_brand(number) == brand


def test_expiry_is_end_of_month() -> None:
    assert not is_expired(11, 2026, TODAY)
    assert is_expired(10, 2026, TODAY)
    assert is_expired(12, 2025, TODAY)
    assert not is_expired(1, 2027, TODAY)


def test_card_problems_never_quote_the_number() -> None:
    number = "4242424242424241"
    problems = card_problems(number, 13, 2030, "12", TODAY)
    fields = {p.field for p in problems}
    assert fields == {"card.number", "card.exp_month", "card.cvc"}
    assert all(number not in p.message for p in problems)
    assert card_problems("4242424242424242", 12, 2030, "123", TODAY) == []
    assert card_problems("4242424242424242", 12, 2030, "1234", TODAY) == []
    assert [p.field for p in card_problems("42424242424", 12, 2030, "123", TODAY)] == [
        "card.number"
    ]
    assert [p.field for p in card_problems("4242424242424242", 1, 2020, "123", TODAY)] == [
        "card.exp_year"
    ]
    assert [p.field for p in card_problems("4242424242424242", 1, 2099, "123", TODAY)] == [
        "card.exp_year"
    ]


def test_password_policy_and_email() -> None:
    assert password_problem("123456789") is not None
    assert password_problem("1234567890") is None
    assert password_problem("x" * 2000) is not None
    assert normalize_email("  Ada@Example.COM ") == "ada@example.com"


def test_kyc_is_decided_once() -> None:
    assert kyc_transition_allowed(KycStatus.PENDING, KycStatus.VERIFIED)
    assert kyc_transition_allowed(KycStatus.PENDING, KycStatus.REJECTED)
    assert not kyc_transition_allowed(KycStatus.VERIFIED, KycStatus.REJECTED)
    assert not kyc_transition_allowed(KycStatus.REJECTED, KycStatus.VERIFIED)


def test_field_cipher_binds_value_to_place() -> None:
    box = crypto.FieldCipher(bytes(range(32)))
    a = box.encrypt("1990-12-10", aad="identity.consumers.date_of_birth:cus_1")
    b = box.encrypt("1990-12-10", aad="identity.consumers.date_of_birth:cus_1")
    assert a != b  # a fresh nonce per value
    assert b"1990" not in a
    assert len(a) == 1 + 12 + len("1990-12-10") + 16
    assert box.decrypt(a, aad="identity.consumers.date_of_birth:cus_1") == "1990-12-10"
    with pytest.raises(crypto.DecryptionError):
        box.decrypt(a, aad="identity.consumers.date_of_birth:cus_2")
    with pytest.raises(crypto.DecryptionError):
        crypto.FieldCipher(bytes(32)).decrypt(a, aad="identity.consumers.date_of_birth:cus_1")
    tampered = a[:-1] + bytes([a[-1] ^ 1])
    with pytest.raises(crypto.DecryptionError):
        box.decrypt(tampered, aad="identity.consumers.date_of_birth:cus_1")


async def test_passwords_hash_with_argon2id() -> None:
    stored = await crypto.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert (await crypto.verify_password(stored, "correct horse battery")).ok
    assert not (await crypto.verify_password(stored, "wrong horse battery")).ok
    assert not (await crypto.verify_password(None, "correct horse battery")).ok


def test_access_tokens() -> None:
    key = b"k" * 32
    now = datetime.now(UTC)
    token = crypto.issue_access_token(key, "cus_1", "ses_1", now, 900)
    claims = crypto.read_access_token(key, token)
    assert claims == crypto.AccessClaims("cus_1", "ses_1")
    assert crypto.read_access_token(b"x" * 32, token) is None
    old = crypto.issue_access_token(key, "cus_1", "ses_1", now - timedelta(seconds=901), 900)
    assert crypto.read_access_token(key, old) is None
    assert crypto.read_access_token(key, "not.a.jwt") is None


def test_refresh_tokens_are_random_and_hashed() -> None:
    a, b = crypto.new_refresh_token(), crypto.new_refresh_token()
    assert a != b and len(a) > 40
    assert crypto.refresh_token_hash(a) != crypto.refresh_token_hash(b)
    assert len(crypto.refresh_token_hash(a)) == 32
