"""`POST /v1/consumers`: sign-up, validation, duplicates, encryption at rest."""

from __future__ import annotations

import asyncio

from bnpl.runtime import Runtime
from tests.support import Api, assert_problem, unique


async def test_sign_up_answers_the_consumer_without_the_password(api: Api) -> None:
    payload = api.consumer_payload()
    r = await api.client.post("/v1/consumers", json=payload)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("cus_")
    assert body["kyc_status"] == "pending"
    assert body["email"] == payload["email"]
    assert body["first_name"] == "Ada" and body["last_name"] == "Lovelace"
    assert body["phone"] == "+14155550100"
    assert body["date_of_birth"] == "1990-12-10"
    assert body["address"]["city"] == "Springfield"
    assert body["address"]["country"] == "US"
    assert body["credit_limit"] == 0 and body["available_credit"] == 0
    assert body["currency"] == "USD"
    assert "created_at" in body
    assert "password" not in body and "password_hash" not in body
    assert payload["password"] not in r.text


async def test_personal_data_is_encrypted_at_rest(api: Api, rt: Runtime) -> None:
    payload = api.consumer_payload(phone="+14155550199", date_of_birth="1985-03-07")
    r = await api.client.post("/v1/consumers", json=payload)
    assert r.status_code == 201, r.text
    row = await rt.db.fetchrow("SELECT * FROM identity.consumers WHERE id = $1", r.json()["id"])
    assert row is not None
    assert row["email"] == payload["email"]  # plaintext: the login
    assert row["password_hash"].startswith("$argon2id$")
    assert payload["password"] not in row["password_hash"]
    for column, clear in (
        ("phone_enc", b"4155550199"),
        ("date_of_birth_enc", b"1985-03-07"),
        ("address_enc", b"Springfield"),
        ("address_enc", b"1 Main St"),
    ):
        stored = bytes(row[column])
        assert clear not in stored, column
        assert len(stored) > 12 + 16  # version, nonce, tag
    # Nothing in the row's text form carries the personal data either.
    as_text = await rt.db.fetchval(
        "SELECT c::text FROM identity.consumers c WHERE id = $1", r.json()["id"]
    )
    for clear_text in ("4155550199", "1985-03-07", "Springfield", payload["password"]):
        assert clear_text not in as_text
    # The same value encrypts differently for two consumers (random nonce).
    r2 = await api.client.post(
        "/v1/consumers",
        json=api.consumer_payload(phone="+14155550199", date_of_birth="1985-03-07"),
    )
    other = await rt.db.fetchval(
        "SELECT date_of_birth_enc FROM identity.consumers WHERE id = $1", r2.json()["id"]
    )
    assert bytes(other) != bytes(row["date_of_birth_enc"])


async def test_sign_up_emits_registered_and_audits(api: Api, rt: Runtime) -> None:
    r = await api.client.post("/v1/consumers", json=api.consumer_payload())
    consumer_id = r.json()["id"]
    event = await rt.db.fetchrow(
        "SELECT type, aggregate_id, consumer_id, data FROM messaging.events "
        "WHERE consumer_id = $1 AND type = 'consumer.registered'",
        consumer_id,
    )
    assert event is not None
    assert event["aggregate_id"] == consumer_id
    assert event["data"] == {"consumer_id": consumer_id}  # no personal data in events
    r = await api.client.get(f"/v1/audit?entity_id={consumer_id}", headers=api.operator)
    assert r.status_code == 200, r.text
    actions = [a["action"] for a in r.json()["data"]]
    assert "consumer.registered" in actions


async def test_duplicate_email_is_409_whatever_its_case(api: Api) -> None:
    payload = api.consumer_payload()
    assert (await api.client.post("/v1/consumers", json=payload)).status_code == 201
    again = {**payload, "email": payload["email"].upper()}
    r = await api.client.post("/v1/consumers", json=again)
    assert_problem(r, 409, "email_taken")


async def test_concurrent_sign_ups_with_one_email_make_one_consumer(api: Api, rt: Runtime) -> None:
    email = f"{unique('race')}@example.com"
    payloads = [api.consumer_payload(email=email if i % 2 else email.upper()) for i in range(6)]
    answers = await asyncio.gather(*(api.client.post("/v1/consumers", json=p) for p in payloads))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    for a in answers:
        if a.status_code == 409:
            assert_problem(a, 409, "email_taken")
    count = await rt.db.fetchval(
        "SELECT count(*) FROM identity.consumers WHERE lower(email) = lower($1)", email
    )
    assert count == 1


async def test_weak_password(api: Api) -> None:
    r = await api.client.post("/v1/consumers", json=api.consumer_payload(password="short1234"))
    body = assert_problem(r, 422, "weak_password")
    assert "short1234" not in r.text
    assert body["errors"][0]["field"] == "password"


async def test_malformed_requests_are_problems_never_500(api: Api) -> None:
    r = await api.client.post(
        "/v1/consumers", content=b'{"email": "x', headers={"content-type": "application/json"}
    )
    assert_problem(r, 400)
    r = await api.client.post(
        "/v1/consumers", content=b"[1, 2]", headers={"content-type": "application/json"}
    )
    assert r.status_code in (400, 422)
    assert_problem(r, r.status_code)

    secret = "my secret password 123"
    cases = [
        api.consumer_payload(first_name=123, password=secret),
        api.consumer_payload(date_of_birth="not a date", password=secret),
        api.consumer_payload(date_of_birth="2999-01-01", password=secret),
        api.consumer_payload(email="not-an-email", password=secret),
        api.consumer_payload(phone="555", password=secret),
        api.consumer_payload(password=12345678901),
        api.consumer_payload(address={"line1": "x"}, password=secret),
        api.consumer_payload(address={**api.consumer_payload()["address"], "country": "USA"}),
        {**api.consumer_payload(password=secret), "is_admin": True},
        {k: v for k, v in api.consumer_payload(password=secret).items() if k != "last_name"},
        {},
    ]
    for payload in cases:
        r = await api.client.post("/v1/consumers", json=payload)
        assert r.status_code in (400, 422), (payload, r.status_code, r.text)
        body = assert_problem(r, r.status_code)
        assert body["code"] == "validation_error", body
        assert secret not in r.text


async def test_signup_replays_with_the_same_idempotency_key(api: Api) -> None:
    payload = api.consumer_payload()
    headers = {"Idempotency-Key": unique("idem")}
    first = await api.client.post("/v1/consumers", json=payload, headers=headers)
    second = await api.client.post("/v1/consumers", json=payload, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
