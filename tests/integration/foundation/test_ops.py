"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bnpl.config import Settings
from bnpl.kit.ids import new_id
from tests.conftest import ADMIN_TOKEN
from tests.integration.foundation.conftest import running_probe
from tests.integration.foundation.probe import consumer_token, merchant_token
from tests.support import assert_problem, bearer


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"


async def test_metrics_in_prometheus_text_format(client: httpx.AsyncClient) -> None:
    await client.get("/v1/audit")  # a metered request (401)
    await client.get("/v1/nowhere/chk_01JD0000000000000000000000")  # 404
    r = await client.get("/metrics", headers=bearer(ADMIN_TOKEN))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    durations = families["bnpl_http_request_duration_seconds"]
    count = "bnpl_http_request_duration_seconds_count"
    labels = [s.labels for s in durations.samples if s.name == count]
    assert {"method": "GET", "route": "/v1/audit", "status": "401"} in labels
    # unmatched paths are one label value, never the raw path
    assert {"method": "GET", "route": "unmatched", "status": "404"} in labels
    assert not any("chk_" in s["route"] for s in labels)
    # the operations endpoints themselves are not metered
    assert not any(s["route"] in ("/healthz", "/metrics") for s in labels)


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    paths = doc["paths"]
    assert "get" in paths["/v1/audit"]
    assert "get" in paths["/v1/audit/verify"]
    assert "post" in paths["/v1/sandbox/clock"]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert path in paths
    clock = paths["/v1/sandbox/clock"]["post"]
    schema_ref = clock["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"advance", "to"} <= set(schema["properties"])
    # every reference resolves
    refs = {
        part.strip('"')
        for part in r.text.split('"$ref":')[1:]
        for part in [part.split(",")[0].split("}")[0].strip()]
    }
    for ref in refs:
        assert ref.startswith("#/components/"), ref
        _, _, kind, name = ref.split("/")
        assert name in doc["components"][kind], ref


async def test_docs_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text


async def test_metrics_are_not_public(client: httpx.AsyncClient) -> None:
    for headers in ({}, bearer("not-a-token"), {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        r = await client.get("/metrics", headers=headers)
        assert_problem(r, 401, "unauthenticated")
        assert "bnpl_http_request_duration_seconds" not in r.text
    # Health and readiness stay public (load balancers and orchestrators probe them).
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_metrics_admit_the_metrics_token(settings: Settings) -> None:
    token = "scrape-" + new_id("tok")
    async with running_probe(settings.model_copy(update={"metrics_token": token})) as probe:
        r = await probe.client.get("/metrics", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert "bnpl_http_request_duration_seconds_count" in r.text
        assert (await probe.client.get("/metrics", headers=probe.operator)).status_code == 200
        assert_problem(await probe.client.get("/metrics"), 401, "unauthenticated")
        assert_problem(
            await probe.client.get("/metrics", headers=bearer(token + "x")), 401, "unauthenticated"
        )
        # Merchants and consumers are authenticated, but this is not for them.
        for credential in (merchant_token(new_id("mer")), consumer_token(new_id("cus"))):
            r = await probe.client.get("/metrics", headers=bearer(credential))
            assert_problem(r, 403, "forbidden")
