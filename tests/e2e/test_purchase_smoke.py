from tests.support import Api


async def test_pay_in_4_purchase(api: Api) -> None:
    merchant = await api.active_merchant()
    consumer = await api.consumer()
    pm = await api.add_card(consumer)
    r = await api.client.post(
        "/v1/checkouts",
        json={"amount": 40003, "currency": "USD", "merchant_reference": "o-1"},
        headers=merchant.headers,
    )
    assert r.status_code == 201, r.text
    checkout = r.json()
    r = await api.client.post(
        f"/v1/checkouts/{checkout['id']}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authorized", r.text
