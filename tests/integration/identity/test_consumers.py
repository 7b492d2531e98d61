"""`GET /v1/me`, `GET /v1/consumers/{id}` and `PUT /v1/consumers/{id}/credit_limit`."""

from __future__ import annotations

from typing import Any

from tests.support import Api, assert_problem


async def test_me(api: Api) -> None:
    consumer = await api.consumer()
    r = await api.client.get("/v1/me", headers=consumer.headers)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == consumer.id
    assert me["email"] == consumer.email
    assert me["date_of_birth"] == "1990-12-10"
    assert me["address"]["line1"] == "1 Main St"
    assert {"kyc_status", "credit_limit", "available_credit", "currency"} <= me.keys()
    assert_problem(await api.client.get("/v1/me"), 401, "unauthenticated")
    assert_problem(await api.client.get("/v1/me", headers=api.operator), 403, "forbidden")


async def test_operator_reads_a_consumer(api: Api) -> None:
    consumer = await api.consumer()
    r = await api.client.get(f"/v1/consumers/{consumer.id}", headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == consumer.id
    assert r.json()["kyc_status"] == "verified"
    assert_problem(
        await api.client.get("/v1/consumers/cus_nobody", headers=api.operator), 404, "not_found"
    )


async def test_operator_endpoints_refuse_others(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    url = f"/v1/consumers/{consumer.id}"
    assert_problem(await api.client.get(url), 401, "unauthenticated")
    assert_problem(await api.client.get(url, headers=consumer.headers), 403, "forbidden")
    put = f"{url}/credit_limit"
    assert_problem(await api.client.put(put, json={"amount": 1}), 401, "unauthenticated")
    r = await api.client.put(put, json={"amount": 1}, headers=consumer.headers)
    assert_problem(r, 403, "forbidden")


async def test_operator_sets_the_credit_limit(api: Api) -> None:
    consumer = await api.consumer()
    url = f"/v1/consumers/{consumer.id}/credit_limit"
    r = await api.client.put(url, json={"amount": 150_000}, headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == consumer.id
    assert r.json()["credit_limit"] == 150_000
    assert r.json()["available_credit"] == 150_000
    me = (await api.client.get("/v1/me", headers=consumer.headers)).json()
    assert me["credit_limit"] == 150_000
    r = await api.client.put(url, json={"amount": 0, "currency": "USD"}, headers=api.operator)
    assert r.json()["credit_limit"] == 0 and r.json()["available_credit"] == 0
    audit = await api.client.get(
        "/v1/audit", params={"entity_id": consumer.id}, headers=api.operator
    )
    assert "consumer.credit_limit_set" in [a["action"] for a in audit.json()["data"]]


async def test_limit_set_before_kyc_survives_verification(api: Api) -> None:
    r = await api.client.post("/v1/consumers", json=api.consumer_payload())
    consumer_id = r.json()["id"]
    r = await api.client.put(
        f"/v1/consumers/{consumer_id}/credit_limit", json={"amount": 250_000}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    await api.settle()
    r = await api.client.get(f"/v1/consumers/{consumer_id}", headers=api.operator)
    assert r.json()["kyc_status"] == "verified"
    assert r.json()["credit_limit"] == 250_000


async def test_credit_limit_validation(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    url = f"/v1/consumers/{consumer.id}/credit_limit"
    bad: list[Any] = [
        {"amount": -1},
        {"amount": 10**15},
        {"amount": 10**30},
        {"amount": "150000"},
        {"amount": 1500.5},
        {"amount": True},
        {"amount": None},
        {},
        {"amount": 100, "currency": "EUR"},
        {"amount": 100, "extra": 1},
    ]
    for body in bad:
        r = await api.client.put(url, json=body, headers=api.operator)
        assert r.status_code in (400, 422), (body, r.text)
        assert_problem(r, r.status_code, "validation_error")
    r = await api.client.put(
        url, content=b"{", headers={**api.operator, "content-type": "application/json"}
    )
    assert_problem(r, 400)
    r = await api.client.put(
        "/v1/consumers/cus_nobody/credit_limit", json={"amount": 1}, headers=api.operator
    )
    assert_problem(r, 404, "not_found")
