"""`/v1/me/payment_methods`: tokenized cards, validation, and the number never kept anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from bnpl import identity
from bnpl.runtime import Runtime
from tests.support import Api, ConsumerHandle, assert_problem


def card(
    number: str, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123"
) -> dict[str, Any]:
    return {
        "type": "card",
        "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc},
    }


async def _add(api: Api, consumer: ConsumerHandle, body: dict[str, Any]) -> Any:
    return await api.client.post("/v1/me/payment_methods", json=body, headers=consumer.headers)


@pytest.mark.parametrize(
    ("number", "cvc", "brand"),
    [
        ("4242424242424242", "123", "visa"),
        ("5555555555554444", "123", "mastercard"),
        ("378282246310005", "1234", "amex"),
    ],
)
async def test_add_card(api: Api, number: str, cvc: str, brand: str) -> None:
    consumer = await api.consumer(verified=False)
    r = await _add(api, consumer, card(number, cvc=cvc))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("pm_")
    assert body["type"] == "card"
    assert body["brand"] == brand
    assert body["last4"] == number[-4:]
    assert body["exp_month"] == 12 and body["exp_year"] == 2030
    assert number not in r.text and cvc not in {v for v in body.values() if isinstance(v, str)}


async def test_invalid_cards_are_422_invalid_card_without_the_number(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    cases = [
        card("4242424242424241"),  # Luhn
        card("4242 4242 4242 4242"),  # not digits only
        card("42424242424"),  # too short
        card("42424242424242424242"),  # too long
        card("4242424242424242", exp_month=1, exp_year=2020),  # expired
        card("4242424242424242", exp_month=13),
        card("4242424242424242", cvc="12"),
        card("4242424242424242", cvc="abc"),
    ]
    for body in cases:
        r = await _add(api, consumer, body)
        problem = assert_problem(r, 422, "invalid_card")
        assert problem["errors"], problem
        assert body["card"]["number"] not in r.text
        assert body["card"]["number"].replace(" ", "") not in r.text


async def test_malformed_card_requests_never_echo_the_number(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    number = "4242424242424242"
    cases: list[Any] = [
        {
            "type": "card",
            "card": {"number": number, "exp_month": "twelve", "exp_year": 2030, "cvc": "123"},
        },
        {
            "type": "card",
            "card": {"number": int(number), "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        },
        {
            "type": "bank",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        },
        {
            "type": "card",
            "card": {
                "number": number,
                "exp_month": 12,
                "exp_year": 2030,
                "cvc": "123",
                "pin": number,
            },
        },
        {
            "type": "card",
            "card": {"number": number + "0" * 40, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        },
        {"type": "card", "card": {"number": number}},
        {"type": "card", "number": number},
    ]
    for body in cases:
        r = await _add(api, consumer, body)
        assert r.status_code in (400, 422), (r.status_code, r.text)
        assert_problem(r, r.status_code)
        assert number not in r.text, r.text
        assert "123" not in r.json().get("detail", "")


async def test_card_number_is_never_stored(api: Api, rt: Runtime) -> None:
    consumer = await api.consumer(verified=False)
    number = "5555555555554444"
    r = await api.client.post(
        "/v1/me/payment_methods",
        json=card(number, cvc="987"),
        headers={**consumer.headers, "Idempotency-Key": f"pm-{consumer.id}"},
    )
    assert r.status_code == 201, r.text
    bad = await _add(api, consumer, card("5555555555554443"))
    assert_problem(bad, 422, "invalid_card")
    needles = [number, number.encode().hex(), "5555555555554443", b"5555555555554443".hex()]
    tables = await rt.db.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('identity', 'credit', 'audit', 'messaging', 'gateway') "
        "AND table_type = 'BASE TABLE'"
    )
    assert tables
    for t in tables:
        name = f'"{t["table_schema"]}"."{t["table_name"]}"'
        for needle in needles:
            hits = await rt.db.fetchval(
                f"SELECT count(*) FROM {name} x WHERE x::text LIKE '%' || $1 || '%'", needle
            )
            assert hits == 0, (name, needle)
    row = await rt.db.fetchrow(
        "SELECT brand, last4, exp_month, exp_year, token_enc FROM identity.payment_methods "
        "WHERE id = $1",
        r.json()["id"],
    )
    assert row is not None
    assert (row["brand"], row["last4"], row["exp_month"], row["exp_year"]) == (
        "mastercard",
        "4444",
        12,
        2030,
    )
    assert b"tok_" not in bytes(row["token_enc"])  # the gateway token is encrypted too


async def test_list_and_paginate(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    ids = [await api.add_card(consumer) for _ in range(3)]
    r = await api.client.get("/v1/me/payment_methods?limit=2", headers=consumer.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [p["id"] for p in page["data"]] == ids[:2]
    assert page["has_more"] is True and page["next_cursor"] == ids[1]
    r = await api.client.get(
        f"/v1/me/payment_methods?limit=2&starting_after={page['next_cursor']}",
        headers=consumer.headers,
    )
    page = r.json()
    assert [p["id"] for p in page["data"]] == ids[2:]
    assert page["has_more"] is False and page["next_cursor"] is None
    r = await api.client.get("/v1/me/payment_methods?limit=0", headers=consumer.headers)
    assert_problem(r, 422)


async def test_delete_is_soft_and_private(api: Api, rt: Runtime) -> None:
    owner = await api.consumer(verified=False)
    stranger = await api.consumer(verified=False)
    pm_id = await api.add_card(owner)
    r = await api.client.delete(f"/v1/me/payment_methods/{pm_id}", headers=stranger.headers)
    assert_problem(r, 404, "not_found")
    r = await api.client.delete(f"/v1/me/payment_methods/{pm_id}", headers=owner.headers)
    assert r.status_code == 204, r.text
    r = await api.client.delete(f"/v1/me/payment_methods/{pm_id}", headers=owner.headers)
    assert_problem(r, 404, "not_found")
    listed = (await api.client.get("/v1/me/payment_methods", headers=owner.headers)).json()
    assert pm_id not in [p["id"] for p in listed["data"]]
    deleted_at = await rt.db.fetchval(
        "SELECT deleted_at FROM identity.payment_methods WHERE id = $1", pm_id
    )
    assert deleted_at is not None  # kept: plans and payments may still name it


async def test_payment_methods_are_for_consumers_only(api: Api) -> None:
    assert_problem(await api.client.get("/v1/me/payment_methods"), 401, "unauthenticated")
    r = await api.client.post(
        "/v1/me/payment_methods", json=card("4242424242424242"), headers=api.operator
    )
    assert_problem(r, 403, "forbidden")


async def test_facade_gives_the_token_to_its_owner_only(api: Api, rt: Runtime) -> None:
    owner = await api.consumer()
    stranger = await api.consumer(verified=False)
    pm_id = await api.add_card(owner)
    async with rt.db.connection() as conn:
        token = await identity.payment_method_token(conn, owner.id, pm_id)
        assert token is not None and token.startswith("tok_")
        assert await identity.payment_method_token(conn, stranger.id, pm_id) is None
        assert await identity.payment_method_token(conn, None, pm_id) == token
        facts = await identity.consumer_facts(conn, owner.id)
        assert facts is not None
        assert facts.kyc_status is identity.KycStatus.VERIFIED
        assert facts.date_of_birth.isoformat() == "1990-12-10"
        assert facts.country == "US" and facts.email == owner.email
        assert await identity.consumer_id_by_email(conn, owner.email.upper()) == owner.id
        assert await identity.consumer_facts(conn, "cus_nobody") is None
    r = await api.client.delete(f"/v1/me/payment_methods/{pm_id}", headers=owner.headers)
    assert r.status_code == 204
    async with rt.db.connection() as conn:
        assert await identity.payment_method_token(conn, owner.id, pm_id) is None
        assert (
            await identity.payment_method_token(conn, owner.id, pm_id, include_deleted=True)
            == token
        )
