from tests.support import Api


async def test_final_verify(api: Api) -> None:
    await api.settle()
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    print("\nFINAL VERIFY", r.json())
    r = await api.client.get("/v1/ledger/balances", headers=api.operator)
    print("BALANCES", r.json())
