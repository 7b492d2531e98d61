from tests.support import Api


async def test_health(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200
    r = await api.client.get("/readyz")
    assert r.json()["status"] == "ready"
