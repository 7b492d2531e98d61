from tests.e2e.collections.helpers import advance, charges, ledger_ok, plan, purchase
from tests.support import Api


async def test_autopay_pays_a_pay_in_4_off(iso_api: Api) -> None:
    api = iso_api
    bought = await purchase(api, amount=40_003)
    await advance(api, "P43D")
    body = await plan(api, bought["plan_id"])
    assert body["status"] == "paid_off", body
    assert [i["status"] for i in body["installments"]] == ["paid"] * 4
    assert [c["amount"] for c in await charges(api, bought["pm"])] == [
        10_003,
        10_000,
        10_000,
        10_000,
    ]
    await ledger_ok(api)
