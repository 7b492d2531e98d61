"""Every response carries `X-Request-Id`: the client's when it sent one, a new one otherwise;
a command's audit record carries it too."""

from __future__ import annotations

import httpx

from bnpl.kit.ids import has_prefix, new_id
from tests.integration.foundation.conftest import Probe
from tests.integration.foundation.probe import merchant_token
from tests.support import bearer


async def test_echoed_when_sent_generated_otherwise(client: httpx.AsyncClient) -> None:
    sent = "client-chosen-id-123"
    for path in ("/healthz", "/readyz", "/v1/nowhere", "/v1/audit", "/openapi.json"):
        r = await client.get(path, headers={"X-Request-Id": sent})
        assert r.headers["x-request-id"] == sent, path
        r = await client.get(path)
        assert has_prefix(r.headers["x-request-id"], "req"), (path, r.headers)
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert first != second


async def test_present_on_errors_of_every_layer(probe_app: Probe) -> None:
    merchant = bearer(merchant_token(new_id("mer")))
    requests = [
        ("GET", "/probe/anyone", {}, None),  # 401 from a dependency
        ("GET", "/probe/boom", {}, None),  # 500 from an unexpected exception
        ("POST", "/probe/widgets", merchant, {"amount": -1}),  # 422
        ("POST", "/probe/widgets", {**merchant, "Idempotency-Key": "k" * 256}, {}),  # gateway
        ("GET", "/probe/merchant", bearer(merchant_token("x", suspended=True)), None),  # 403
    ]
    for method, path, headers, body in requests:
        r = await probe_app.client.request(
            method, path, headers={**headers, "X-Request-Id": "rid-err"}, json=body
        )
        assert r.status_code >= 400
        assert r.headers["x-request-id"] == "rid-err", (path, r.status_code)
        r = await probe_app.client.request(method, path, headers=headers, json=body)
        assert has_prefix(r.headers["x-request-id"], "req"), (path, r.status_code)


async def test_long_printable_ids_are_echoed_whole(client: httpx.AsyncClient) -> None:
    for sent in ("a" * 300, "b" * 1024, "trace=1; span=~!@#$%^&*()[]{}<>?/|\\ x"):
        r = await client.get("/healthz", headers={"X-Request-Id": sent})
        assert r.headers["x-request-id"] == sent


async def test_ids_too_long_or_not_printable_ascii_are_replaced(
    client: httpx.AsyncClient,
) -> None:
    for sent in (b"a" * 1025, "caf\u00e9".encode(), b"tab\there", b"nul\x00", b""):
        r = await client.get("/healthz", headers={"X-Request-Id": sent})
        assert has_prefix(r.headers["x-request-id"], "req"), sent


async def test_a_long_request_id_reaches_the_audit_record(probe_app: Probe) -> None:
    sent = "r" * 1024
    r = await probe_app.client.post(
        "/probe/widgets",
        json={"amount": 100, "currency": "EUR", "kind": "stove", "card_number": "4242424242424242"},
        headers={**bearer(merchant_token(new_id("mer"))), "X-Request-Id": sent},
    )
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == sent
    r = await probe_app.client.get(
        f"/v1/audit?entity_id={r.json()['id']}", headers=probe_app.operator
    )
    assert r.json()["data"][0]["request_id"] == sent


async def test_command_audit_record_carries_the_request_id(probe_app: Probe) -> None:
    merchant_id = new_id("mer")
    r = await probe_app.client.post(
        "/probe/widgets",
        json={"amount": 100, "currency": "EUR", "kind": "stove", "card_number": "4242424242424242"},
        headers={**bearer(merchant_token(merchant_id)), "X-Request-Id": "rid-audit-1"},
    )
    assert r.status_code == 201, r.text
    widget_id = r.json()["id"]
    r = await probe_app.client.get(f"/v1/audit?entity_id={widget_id}", headers=probe_app.operator)
    records = r.json()["data"]
    assert len(records) == 1
    assert records[0]["request_id"] == "rid-audit-1"
    assert records[0]["actor"] == f"merchant:{merchant_id}"
    assert records[0]["action"] == "probe.widget_created"

    r = await probe_app.client.post(
        "/probe/widgets",
        json={"amount": 100, "currency": "EUR", "kind": "stove", "card_number": "4242424242424242"},
        headers=bearer(merchant_token(merchant_id)),
    )
    generated = r.headers["x-request-id"]
    r = await probe_app.client.get(
        f"/v1/audit?entity_id={r.json()['id']}", headers=probe_app.operator
    )
    assert r.json()["data"][0]["request_id"] == generated
