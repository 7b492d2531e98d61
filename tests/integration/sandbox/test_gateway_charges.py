"""`GET /v1/sandbox/gateway/charges`: the gateway simulator's own record of a card's charges."""

import asyncio

from bnpl import identity
from bnpl.kit.ids import new_id
from tests.support import Api, assert_problem


async def _authorized_pay_in_4(api: Api, card: str, amount: int = 40_001) -> tuple[str, str]:
    merchant = await api.active_merchant()
    consumer = await api.consumer()
    pm = await api.add_card(consumer, card)
    r = await api.client.post(
        "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=merchant.headers
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/checkouts/{r.json()['id']}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200, r.text
    return pm, r.json()["status"]


async def test_lists_what_the_gateway_charged(api: Api) -> None:
    pm, status = await _authorized_pay_in_4(api, "4242424242424242", 40_001)
    assert status == "authorized"
    r = await api.client.get(
        "/v1/sandbox/gateway/charges", params={"payment_method_id": pm}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    charges = r.json()["data"]
    # The down payment: installment 1 carries the remainder cents (40001 - 3 * 10000).
    assert [(c["amount"], c["currency"], c["status"]) for c in charges] == [
        (10_001, "USD", "captured")
    ]
    assert charges[0]["id"].startswith("ch_")


async def test_flaky_card_is_charged_once(api: Api) -> None:
    pm, status = await _authorized_pay_in_4(api, "4000000000000119", 8_000)
    assert status == "authorized"
    r = await api.client.get(
        "/v1/sandbox/gateway/charges", params={"payment_method_id": pm}, headers=api.operator
    )
    assert [c["amount"] for c in r.json()["data"]] == [2_000]


async def test_declined_card_has_no_charge(api: Api) -> None:
    pm, status = await _authorized_pay_in_4(api, "4000000000000002", 8_000)
    assert status == "declined"
    r = await api.client.get(
        "/v1/sandbox/gateway/charges", params={"payment_method_id": pm}, headers=api.operator
    )
    assert r.json()["data"] == []


async def test_operator_only_and_unknown_method(api: Api) -> None:
    consumer = await api.consumer()
    r = await api.client.get(
        "/v1/sandbox/gateway/charges",
        params={"payment_method_id": "pm_x"},
        headers=consumer.headers,
    )
    assert_problem(r, 403, "forbidden")
    r = await api.client.get(
        "/v1/sandbox/gateway/charges", params={"payment_method_id": "pm_nope"}, headers=api.operator
    )
    assert_problem(r, 404)
    r = await api.client.get("/v1/sandbox/gateway/charges", headers=api.operator)
    assert_problem(r, 422, "validation_error")


async def test_concurrent_charges_are_captured_once_per_key(api: Api) -> None:
    """The simulator captures charges of always-succeeding cards in batches: 40 concurrent
    charges under 20 keys, each sent twice at once, make 20 captures, and both sends of a
    key answer the same charge."""
    consumer = await api.consumer()
    pm = await api.add_card(consumer, "4242424242424242")
    async with api.rt.db.connection() as conn:
        token = await identity.payment_method_token(conn, consumer.id, pm)
    assert token is not None
    gateway = api.rt.providers.gateway
    keys = [new_id("pay") + ".1" for _ in range(20)]
    results = await asyncio.gather(
        *(gateway.charge(token, 100 + i, "USD", key) for i, key in enumerate(keys) for _ in "ab")
    )
    assert all(r.outcome.value == "succeeded" for r in results)
    references = [r.gateway_reference for r in results]
    assert references[0::2] == references[1::2]  # a key answers as it did the first time
    assert len(set(references)) == 20
    r = await api.client.get(
        "/v1/sandbox/gateway/charges", params={"payment_method_id": pm}, headers=api.operator
    )
    assert sorted(c["amount"] for c in r.json()["data"]) == [100 + i for i in range(20)]
