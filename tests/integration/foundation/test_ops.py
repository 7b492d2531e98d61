"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


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
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    requests = families["bnpl_http_requests"]  # the parser drops the _total suffix
    assert "bnpl_http_requests_total" in r.text
    labels = [s.labels for s in requests.samples if s.name == "bnpl_http_requests_total"]
    assert {"method": "GET", "route": "/v1/audit", "status": "401"} in labels
    # unmatched paths are one label value, never the raw path
    assert {"method": "GET", "route": "unmatched", "status": "404"} in labels
    assert not any("chk_" in s["route"] for s in labels)
    assert "bnpl_http_request_seconds" in families
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
