"""KYC runs asynchronously after sign-up: verified, or rejected for the sandbox's Fraudster."""

from __future__ import annotations

from bnpl.runtime import Runtime
from tests.support import Api


async def _events(rt: Runtime, consumer_id: str) -> list[tuple[str, dict[str, object]]]:
    rows = await rt.db.fetch(
        "SELECT type, data FROM messaging.events WHERE consumer_id = $1 ORDER BY id",
        consumer_id,
    )
    return [(r["type"], r["data"]) for r in rows]


async def test_kyc_verifies_and_opens_credit(api: Api, rt: Runtime) -> None:
    consumer = await api.consumer()
    r = await api.client.get("/v1/me", headers=consumer.headers)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["kyc_status"] == "verified"
    assert me["credit_limit"] == 100_000
    assert me["available_credit"] == 100_000
    events = await _events(rt, consumer.id)
    types = [t for t, _ in events]
    assert types[:2] == ["consumer.registered", "consumer.kyc_verified"]
    assert events[1][1] == {"consumer_id": consumer.id, "kyc_status": "verified"}
    # Redelivery changes nothing: KYC is decided once.
    assert types.count("consumer.kyc_verified") == 1


async def test_fraudster_is_rejected_and_gets_no_credit(api: Api, rt: Runtime) -> None:
    consumer = await api.consumer(last_name="Fraudster")
    me = (await api.client.get("/v1/me", headers=consumer.headers)).json()
    assert me["kyc_status"] == "rejected"
    assert me["credit_limit"] == 0 and me["available_credit"] == 0
    events = await _events(rt, consumer.id)
    rejected = [d for t, d in events if t == "consumer.kyc_rejected"]
    assert len(rejected) == 1
    assert rejected[0]["kyc_status"] == "rejected"
    assert "consumer.kyc_verified" not in [t for t, _ in events]
    account = await rt.db.fetchval(
        "SELECT count(*) FROM credit.accounts WHERE consumer_id = $1", consumer.id
    )
    assert account == 0


async def test_kyc_outcome_is_audited(api: Api) -> None:
    consumer = await api.consumer()
    r = await api.client.get("/v1/audit", params={"entity_id": consumer.id}, headers=api.operator)
    actions = [a["action"] for a in r.json()["data"]]
    assert "consumer.kyc_verified" in actions
