"""Merchants: create, read, config defaults and validation, PATCH, idempotent create."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from bnpl.runtime import Runtime
from tests.integration.merchants.helpers import bus_paused
from tests.support import Api, assert_problem, bearer, unique

DEFAULT_CONFIG = {
    "plans": ["pay_in_4", "monthly_6", "monthly_12"],
    "mdr_bps": 399,
    "fixed_fee": 30,
    "monthly_apr_bps": 0,
    "min_amount": 1_000,
    "max_amount": 1_000_000,
}


async def test_create_without_config_applies_the_defaults(api: Api) -> None:
    payload = api.merchant_payload()
    r = await api.client.post("/v1/merchants", json=payload, headers=api.operator)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("mer_")
    assert body["status"] == "pending_review"
    assert body["created_at"]
    assert body["rejection_reason"] is None
    for name in ("legal_name", "website", "email", "country", "mcc", "default_currency"):
        assert body[name] == payload[name]
    assert body["config"] == DEFAULT_CONFIG
    assert body["settlement_account"] == {"account_last4": "6789", "routing_number": "110000000"}


async def test_create_with_a_full_config(api: Api) -> None:
    config = {
        "plans": ["pay_in_4"],
        "mdr_bps": 250,
        "fixed_fee": 0,
        "monthly_apr_bps": 0,
        "min_amount": 2_000,
        "max_amount": 150_000,
    }
    body = await api.create_merchant(config=config)
    assert body["config"] == config


async def test_partial_config_keeps_other_defaults_and_range_follows_plans(api: Api) -> None:
    body = await api.create_merchant(config={"plans": ["pay_in_4"], "mdr_bps": 500})
    assert body["config"] == {
        **DEFAULT_CONFIG,
        "plans": ["pay_in_4"],
        "mdr_bps": 500,
        "max_amount": 200_000,
    }
    body = await api.create_merchant(config={"plans": ["monthly_12"]})
    assert (body["config"]["min_amount"], body["config"]["max_amount"]) == (5_000, 1_000_000)
    body = await api.create_merchant(config={})
    assert body["config"] == DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"min_amount": 500_000, "max_amount": 100_000}, "config.min_amount"),
        ({"min_amount": -1}, "config.min_amount"),
        ({"max_amount": 10**15}, "config.max_amount"),
        ({"max_amount": 10**30}, "config.max_amount"),
        ({"min_amount": 999}, "config.min_amount"),  # below pay_in_4's 1,000: widening
        ({"max_amount": 1_000_001}, "config.max_amount"),  # above the monthly plans' range
        ({"plans": ["pay_in_4"], "max_amount": 300_000}, "config.max_amount"),
        ({"plans": ["monthly_6"], "min_amount": 1_000}, "config.min_amount"),
        ({"plans": ["pay_in_8"]}, "config.plans.0"),
        ({"plans": []}, "config.plans"),
        ({"plans": "pay_in_4"}, "config.plans"),
        ({"mdr_bps": 10_001}, "config.mdr_bps"),
        ({"mdr_bps": -5}, "config.mdr_bps"),
        ({"monthly_apr_bps": 20_000}, "config.monthly_apr_bps"),
        ({"fixed_fee": -30}, "config.fixed_fee"),
        ({"mdr_bps": "399"}, "config.mdr_bps"),
        ({"mdr_bps": 3.99}, "config.mdr_bps"),
        ({"fixed_fee": True}, "config.fixed_fee"),
        ({"min_amount": 1000.5}, "config.min_amount"),
        ({"mdr": 399}, "config.mdr"),
    ],
)
async def test_invalid_config_is_422(api: Api, config: dict[str, Any], field: str) -> None:
    r = await api.client.post(
        "/v1/merchants", json=api.merchant_payload(config=config), headers=api.operator
    )
    body = assert_problem(r, 422, "validation_error")
    assert field in [e["field"] for e in body["errors"]], body


async def test_a_whole_json_number_is_that_integer(api: Api) -> None:
    """JSON has one number type: `1000.0` is the integer 1000 (JSON Schema agrees, and
    schemathesis sends it as a valid integer); a fraction is still refused (above)."""
    config = {"min_amount": 5000.0, "mdr_bps": 250.0, "fixed_fee": 0.0}
    r = await api.client.post(
        "/v1/merchants", json=api.merchant_payload(config=config), headers=api.operator
    )
    assert r.status_code == 201, r.text
    body = r.json()["config"]
    assert (body["min_amount"], body["mdr_bps"], body["fixed_fee"]) == (5000, 250, 0)
    assert all(type(body[k]) is int for k in ("min_amount", "mdr_bps", "fixed_fee"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"country": "XX"},
        {"country": "USA"},
        {"country": "us"},
        {"country": 1},
        {"default_currency": "JPY"},
        {"default_currency": "usd"},
        {"mcc": "59411"},
        {"mcc": "59a1"},
        {"mcc": 5941},
        {"email": "not-an-email"},
        {"website": "acme.example"},
        {"website": "ftp://acme.example"},
        {"legal_name": ""},
        {"legal_name": "   "},
        {"legal_name": None},
        {"settlement_account": {"account_number": "12"}},
        {"settlement_account": {"account_number": 123456789}},
        {"settlement_account": None},
        {"status": "active"},
    ],
)
async def test_invalid_fields_are_422(api: Api, overrides: dict[str, Any]) -> None:
    r = await api.client.post(
        "/v1/merchants", json=api.merchant_payload(**overrides), headers=api.operator
    )
    assert_problem(r, 422, "validation_error")


@pytest.mark.parametrize("missing", ["legal_name", "email", "country", "settlement_account"])
async def test_missing_required_field_is_422(api: Api, missing: str) -> None:
    payload = api.merchant_payload()
    del payload[missing]
    r = await api.client.post("/v1/merchants", json=payload, headers=api.operator)
    body = assert_problem(r, 422, "validation_error")
    assert missing in [e["field"] for e in body["errors"]]


async def test_malformed_bodies_are_problems_never_500(api: Api) -> None:
    headers = {**api.operator, "Content-Type": "application/json"}
    r = await api.client.post("/v1/merchants", content=b'{"legal_name": ', headers=headers)
    assert_problem(r, 400, "validation_error")
    for raw in (b"[]", b"null", b'"merchant"', b"42", b"{}"):
        r = await api.client.post("/v1/merchants", content=raw, headers=headers)
        assert_problem(r, 422, "validation_error")


async def test_the_account_number_is_encrypted_at_rest_and_never_echoed(
    api: Api, rt: Runtime
) -> None:
    account_number = f"98{secrets.randbelow(10**10):010d}"
    payload = api.merchant_payload(
        settlement_account={"account_number": account_number, "routing_number": "021000021"}
    )
    r = await api.client.post("/v1/merchants", json=payload, headers=api.operator)
    assert r.status_code == 201, r.text
    assert account_number not in r.text
    merchant = r.json()
    assert merchant["settlement_account"] == {
        "account_last4": account_number[-4:],
        "routing_number": "021000021",
    }
    r = await api.client.get(f"/v1/merchants/{merchant['id']}", headers=api.operator)
    assert account_number not in r.text

    row = await rt.db.fetchrow("SELECT * FROM merchants.merchants WHERE id = $1", merchant["id"])
    assert row is not None
    for value in dict(row).values():
        text = bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value)
        assert account_number not in text
        if isinstance(value, bytes | bytearray):
            assert account_number.encode() not in bytes(value)
    # Nothing else in the database holds it either: events, audit, idempotency answers.
    for query in (
        "SELECT count(*) FROM messaging.events WHERE data::text LIKE '%' || $1 || '%'",
        "SELECT count(*) FROM audit.records WHERE data::text LIKE '%' || $1 || '%'",
    ):
        assert await rt.db.fetchval(query, account_number) == 0

    from bnpl import merchants

    async with rt.db.connection() as conn:
        account = await merchants.settlement_account(
            conn, merchant["id"], aes_key=rt.settings.aes_key
        )
    assert account is not None and account.account_number == account_number


async def test_two_encryptions_of_one_number_differ(api: Api, rt: Runtime) -> None:
    a = await api.create_merchant()
    b = await api.create_merchant()
    rows = await rt.db.fetch(
        "SELECT account_ciphertext FROM merchants.merchants WHERE id = ANY($1)", [a["id"], b["id"]]
    )
    assert len({bytes(r["account_ciphertext"]) for r in rows}) == 2


async def test_idempotent_create_replays_and_creates_one_merchant(api: Api, rt: Runtime) -> None:
    payload = api.merchant_payload()
    headers = {**api.operator, "Idempotency-Key": unique("idem-")}
    first = await api.client.post("/v1/merchants", json=payload, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = await api.client.post("/v1/merchants", json=payload, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    count = await rt.db.fetchval(
        "SELECT count(*) FROM merchants.merchants WHERE email = $1", payload["email"]
    )
    assert count == 1
    applied = await rt.db.fetchval(
        "SELECT count(*) FROM messaging.events "
        "WHERE type = 'merchant.applied' AND aggregate_id = $1",
        first.json()["id"],
    )
    assert applied == 1

    other = await api.client.post("/v1/merchants", json={**payload, "mcc": "5999"}, headers=headers)
    assert_problem(other, 409, "idempotency_key_reused")


async def test_create_is_audited(api: Api) -> None:
    merchant = await api.create_merchant()
    r = await api.client.get(
        "/v1/audit", params={"entity_id": merchant["id"]}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    actions = [(a["actor"], a["action"]) for a in r.json()["data"]]
    assert ("operator", "merchant.created") in actions


async def test_authentication_and_authorization(api: Api) -> None:
    payload = api.merchant_payload()
    r = await api.client.post("/v1/merchants", json=payload)
    assert_problem(r, 401, "unauthenticated")
    r = await api.client.post("/v1/merchants", json=payload, headers=bearer("nonsense"))
    assert_problem(r, 401, "unauthenticated")
    r = await api.client.post("/v1/merchants", json=payload, headers=bearer("sk_test_nope"))
    assert_problem(r, 401, "unauthenticated")

    merchant = await api.create_merchant()
    r = await api.client.get(f"/v1/merchants/{merchant['id']}")
    assert_problem(r, 401, "unauthenticated")
    r = await api.client.patch(f"/v1/merchants/{merchant['id']}", json={})
    assert_problem(r, 401, "unauthenticated")


async def test_consumers_are_forbidden(api: Api) -> None:
    payload = api.merchant_payload()
    merchant = await api.create_merchant()
    consumer = await api.consumer(verified=False)
    r = await api.client.post("/v1/merchants", json=payload, headers=consumer.headers)
    assert_problem(r, 403, "forbidden")
    r = await api.client.get(f"/v1/merchants/{merchant['id']}", headers=consumer.headers)
    assert_problem(r, 403, "forbidden")
    r = await api.client.patch(f"/v1/merchants/{merchant['id']}", json={}, headers=consumer.headers)
    assert_problem(r, 403, "forbidden")


async def test_a_merchant_reads_itself_and_nobody_else(api: Api) -> None:
    mine = await api.active_merchant()
    theirs = await api.active_merchant()
    r = await api.client.get(f"/v1/merchants/{mine.id}", headers=mine.headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == mine.id and r.json()["status"] == "active"
    r = await api.client.get(f"/v1/merchants/{theirs.id}", headers=mine.headers)
    assert_problem(r, 404, "not_found")
    r = await api.client.get("/v1/merchants/mer_nope", headers=mine.headers)
    assert_problem(r, 404, "not_found")
    r = await api.client.get("/v1/merchants/mer_nope", headers=api.operator)
    assert_problem(r, 404, "not_found")

    # Operator-only endpoints refuse a merchant key.
    r = await api.client.post("/v1/merchants", json=api.merchant_payload(), headers=mine.headers)
    assert_problem(r, 403, "forbidden")
    r = await api.client.patch(
        f"/v1/merchants/{mine.id}", json={"config": {"mdr_bps": 0}}, headers=mine.headers
    )
    assert_problem(r, 403, "forbidden")
    r = await api.client.post(f"/v1/merchants/{mine.id}/api_keys", headers=mine.headers)
    assert_problem(r, 403, "forbidden")


async def test_patch_config_merges_and_validates(api: Api) -> None:
    merchant = await api.create_merchant()
    url = f"/v1/merchants/{merchant['id']}"
    r = await api.client.patch(url, json={"config": {"mdr_bps": 450}}, headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {**DEFAULT_CONFIG, "mdr_bps": 450}

    # Narrowing the plans narrows a range the merchant never set itself.
    r = await api.client.patch(url, json={"config": {"plans": ["pay_in_4"]}}, headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {
        **DEFAULT_CONFIG,
        "mdr_bps": 450,
        "plans": ["pay_in_4"],
        "max_amount": 200_000,
    }
    r = await api.client.patch(
        url, json={"config": {"min_amount": 5_000, "max_amount": 100_000}}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    assert (r.json()["config"]["min_amount"], r.json()["config"]["max_amount"]) == (5_000, 100_000)

    for bad in (
        {"max_amount": 300_000},  # wider than pay_in_4's range
        {"min_amount": 200_000, "max_amount": 100_000},
        {"min_amount": 150_000},  # above the stored max
        {"mdr_bps": 10_001},
        {"fixed_fee": -1},
        {"plans": ["nope"]},
        {"plans": []},
    ):
        r = await api.client.patch(url, json={"config": bad}, headers=api.operator)
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["field"].startswith("config."), body
    r = await api.client.get(url, headers=api.operator)
    assert r.json()["config"]["max_amount"] == 100_000  # a refused change changed nothing

    # null restores a default.
    r = await api.client.patch(
        url,
        json={"config": {"plans": None, "min_amount": None, "max_amount": None, "mdr_bps": None}},
        headers=api.operator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"] == DEFAULT_CONFIG

    for bad_body in ({"config": {"mdr_bps": "1"}}, {"status": "rejected"}, {"name": "x"}):
        r = await api.client.patch(url, json=bad_body, headers=api.operator)
        assert_problem(r, 422, "validation_error")
    r = await api.client.patch(
        "/v1/merchants/mer_nope", json={"config": {"mdr_bps": 1}}, headers=api.operator
    )
    assert_problem(r, 404, "not_found")


async def test_status_transitions(api: Api, rt: Runtime) -> None:
    async with bus_paused(rt):
        pending = await api.create_merchant()
        url = f"/v1/merchants/{pending['id']}"
        for status in ("active", "suspended"):
            r = await api.client.patch(url, json={"status": status}, headers=api.operator)
            assert_problem(r, 409, "invalid_status_transition")
        r = await api.client.get(url, headers=api.operator)
        assert r.json()["status"] == "pending_review"

    rejected = await api.create_merchant(legal_name=f"REJECT {unique()} LLC")
    await api.settle()
    r = await api.client.patch(
        f"/v1/merchants/{rejected['id']}", json={"status": "active"}, headers=api.operator
    )
    assert_problem(r, 409, "invalid_status_transition")

    active = await api.active_merchant()
    url = f"/v1/merchants/{active.id}"
    r = await api.client.patch(url, json={"status": "active"}, headers=api.operator)
    assert r.status_code == 200 and r.json()["status"] == "active"  # no change, no error
    r = await api.client.patch(url, json={"status": "suspended"}, headers=api.operator)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = await api.client.patch(url, json={"status": "active"}, headers=api.operator)
    assert r.status_code == 200 and r.json()["status"] == "active"
    await api.settle()
    types = await api.rt.db.fetch(
        "SELECT type FROM messaging.events WHERE merchant_id = $1 ORDER BY id", active.id
    )
    assert [t["type"] for t in types] == [
        "merchant.applied",
        "merchant.activated",
        "merchant.suspended",
        "merchant.reactivated",
    ]


async def test_list_merchants(api: Api) -> None:
    created = [await api.create_merchant() for _ in range(3)]
    r = await api.client.get(
        "/v1/merchants",
        params={"limit": 2, "starting_after": created[0]["id"]},
        headers=api.operator,
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert [m["id"] for m in page["data"]] == [created[1]["id"], created[2]["id"]]
    await api.settle()
    r = await api.client.get(
        "/v1/merchants", params={"status": "active", "limit": 100}, headers=api.operator
    )
    assert all(m["status"] == "active" for m in r.json()["data"])
    r = await api.client.get("/v1/merchants", params={"limit": 0}, headers=api.operator)
    assert_problem(r, 422, "validation_error")


def test_plan_ranges_agree_with_installments() -> None:
    from bnpl.installments.domain import PlanKind
    from bnpl.merchants import PLAN_RANGES

    assert {k.value: (k.min_amount, k.max_amount) for k in PlanKind} == dict(PLAN_RANGES)


async def test_merchant_config_facade(api: Api, rt: Runtime) -> None:
    from bnpl import merchants

    body = await api.create_merchant(
        config={
            "plans": ["pay_in_4", "monthly_6"],
            "min_amount": 3_000,
            "max_amount": 500_000,
            "monthly_apr_bps": 1_999,
        }
    )
    async with rt.db.connection() as conn:
        config = await merchants.merchant_config(conn, body["id"])
        assert await merchants.merchant_config(conn, "mer_nope") is None
    assert config is not None
    assert config.status == "pending_review" and not config.is_active
    assert config.legal_name == body["legal_name"]
    assert config.default_currency == "USD"
    assert config.plans == ("pay_in_4", "monthly_6")
    assert (config.mdr_bps, config.fixed_fee, config.monthly_apr_bps) == (399, 30, 1_999)
    assert (config.min_amount, config.max_amount) == (3_000, 500_000)
    assert config.amount_range("pay_in_4") == (3_000, 200_000)
    assert config.amount_range("monthly_6") == (5_000, 500_000)
    assert config.amount_range("monthly_12") is None
