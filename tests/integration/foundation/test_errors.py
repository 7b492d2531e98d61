"""Problem details for every failure; malformed input is a 400 or 422, never a 500, and the
answer never echoes what was submitted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bnpl.config import Settings
from bnpl.kit.ids import new_id
from tests.integration.foundation.conftest import Probe
from tests.integration.foundation.probe import merchant_token
from tests.support import PROBLEM, assert_problem, bearer

CARD = "4242424242424242"


def widget(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": 40000,
        "currency": "USD",
        "kind": "tent",
        "card_number": CARD,
    }
    body.update(overrides)
    return body


def assert_problem_shape(body: dict[str, Any]) -> None:
    assert {"type", "title", "status", "code", "detail"} <= set(body), body
    assert body["type"].endswith(body["code"])
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/no-such-thing")
    body = assert_problem(r, 404, "not_found")
    assert_problem_shape(body)


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    r = await client.delete("/healthz")
    body = assert_problem(r, 405, "method_not_allowed")
    assert_problem_shape(body)


async def test_a_405_allows_every_method_served_at_the_path(client: httpx.AsyncClient) -> None:
    """Found by schemathesis (allow_header_conformance): GET and PATCH /v1/merchants/{id} are
    two routes, and Starlette's `Allow` named only the first one's method."""
    cases = {
        "/v1/merchants/mer_x": "GET, PATCH",
        "/v1/webhook_endpoints/whe_x": "DELETE, GET",
        "/v1/checkouts": "GET, POST",
    }
    for path, allow in cases.items():
        r = await client.request("PUT", path)
        assert_problem(r, 405, "method_not_allowed")
        assert r.headers["allow"] == allow, (path, r.headers)


async def test_unexpected_exception_is_a_500_problem_without_details(probe_app: Probe) -> None:
    r = await probe_app.client.get("/probe/boom", headers={"X-Request-Id": "boom-1"})
    body = assert_problem(r, 500, "internal_error")
    assert_problem_shape(body)
    assert "unexpected failure" not in r.text  # no internals leak to the client
    assert r.headers["x-request-id"] == "boom-1"


@pytest.fixture
def merchant() -> dict[str, str]:
    return bearer(merchant_token(new_id("mer")))


async def test_malformed_json_is_400(probe_app: Probe, merchant: dict[str, str]) -> None:
    r = await probe_app.client.post(
        "/probe/widgets",
        content=b'{"amount": 40000, "card_number": "' + CARD.encode() + b'",',
        headers={**merchant, "Content-Type": "application/json"},
    )
    body = assert_problem(r, 400, "validation_error")
    assert_problem_shape(body)
    assert CARD not in r.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "40000"}, "amount"),  # a string is not an integer
        ({"amount": 400.5}, "amount"),  # no floats on a money path
        ({"amount": 400.0}, "amount"),  # not even whole ones
        ({"amount": -100}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": 10**30}, "amount"),  # beyond any bigint
        ({"amount": True}, "amount"),
        ({"currency": "XYZ"}, "currency"),  # unknown enum
        ({"kind": "castle"}, "kind"),
        ({"card_number": CARD + "x"}, "card_number"),
        ({"unexpected": CARD}, "unexpected"),
    ],
)
async def test_invalid_fields_are_422_with_field_errors_and_no_echo(
    probe_app: Probe, merchant: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    r = await probe_app.client.post("/probe/widgets", json=widget(**overrides), headers=merchant)
    body = assert_problem(r, 422, "validation_error")
    assert_problem_shape(body)
    assert field in {e["field"] for e in body["errors"]}, body
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
    assert CARD not in r.text
    assert "input" not in body


async def test_missing_fields_are_each_reported(probe_app: Probe, merchant: dict[str, str]) -> None:
    r = await probe_app.client.post("/probe/widgets", json={"card_number": CARD}, headers=merchant)
    body = assert_problem(r, 422, "validation_error")
    assert {e["field"] for e in body["errors"]} == {"amount", "currency", "kind"}
    assert CARD not in r.text


@pytest.mark.parametrize(
    "content",
    [b"", b"[1, 2, 3]", b'"just a string"', b"null", b"\xff\xfe not utf-8"],
)
async def test_bodies_that_are_not_objects_are_rejected(
    probe_app: Probe, merchant: dict[str, str], content: bytes
) -> None:
    r = await probe_app.client.post(
        "/probe/widgets",
        content=content,
        headers={**merchant, "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_invalid_query_parameters_are_422(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = bearer(settings.admin_token)
    for query in ("limit=0", "limit=101", "limit=ten", "entity_id=" + "x" * 65):
        r = await client.get(f"/v1/audit?{query}", headers=headers)
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["field"] in ("limit", "entity_id"), body
