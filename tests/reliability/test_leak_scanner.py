"""The suite-end scan for secrets (tests/leaks.py) finds each kind it looks for, and does not
cry wolf over what the platform legitimately stores (hashes, ids, masked values)."""

from __future__ import annotations

import hashlib

import pytest

from bnpl.kit.ids import new_id
from tests.leaks import scan

PLANTED = {
    "card number": "charged card 4242424242424242 for ada",
    "cvc field": '{"card": {"cvc": "123"}}',
    "password field": '{"email": "a@b.c", "password": "hunter2hunter2"}',
    "bearer token": "Authorization: Bearer sk_test_abcdefghijklmnopqrstuv",
    "access token (JWT)": "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXNfMSJ9.c2lnbmF0dXJlMTIz",
    "refresh token": "refresh rt_0123456789abcdefghijKLMNOP",
    "merchant secret key": "key sk_test_SAANuyl45x-jXy3_VxrKc-WZyD9J1CUq",
    "webhook secret": "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "known password or token": "correct horse battery",
}


@pytest.mark.parametrize("kind", list(PLANTED))
def test_each_kind_is_found(kind: str) -> None:
    assert kind in scan(PLANTED[kind]), scan(PLANTED[kind])


def test_what_may_be_stored_is_not_a_finding() -> None:
    hashes = " ".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000))
    stored = [
        hashes,
        " ".join(new_id("chk") for _ in range(200)),
        '{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}',
        '{"password": "**********"}',
        "amount 4000000000000001 is not a card (Luhn)",
        "1733390000000 1733390000123",  # epoch milliseconds
        '{"score": 0.4806123456789047, "pd": 0.4348123456789075}',  # a float's fraction digits
    ]
    assert scan("\n".join(stored)) == {}
