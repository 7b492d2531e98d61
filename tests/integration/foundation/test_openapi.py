"""`/openapi.json` describes what the gateway really answers: problem+json errors, bearer
security, `Idempotency-Key` on every POST and the gateway's response headers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support import PROBLEM, assert_problem, bearer

PROBLEM_REF = "#/components/schemas/Problem"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert "HTTPValidationError" not in r.text
    body: dict[str, Any] = r.json()
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in doc["paths"].items()
        for method in METHODS
        if method in item
    ]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    _, _, kind, name = node["$ref"].split("/")
    found: dict[str, Any] = doc["components"][kind][name]
    return found


def header_params(doc: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    params = (resolve(doc, p) for p in operation.get("parameters", []))
    return {p["name"] for p in params if p["in"] == "header"}


def assert_problem_response(operation: dict[str, Any], status: str) -> None:
    response = operation["responses"][status]
    assert set(response["content"]) == {PROBLEM}, (status, response)
    assert response["content"][PROBLEM]["schema"] == {"$ref": PROBLEM_REF}


def test_the_problem_schema_is_what_errors_look_like(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    assert set(schemas["FieldError"]["properties"]) == {"field", "message"}


def test_every_error_response_is_problem_json(doc: dict[str, Any]) -> None:
    for path, method, operation in operations(doc):
        for status in operation["responses"]:
            if status.startswith(("4", "5")):
                assert_problem_response(operation, status)
        assert "X-Request-Id" in operation["responses"]["400"]["headers"], (path, method)


def test_bearer_security_on_authenticated_operations_only(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    create = doc["paths"]["/v1/merchants"]["post"]
    assert create["security"] == [{"bearer": []}]
    assert create["x-principals"] == ["operator"]
    for status in ("401", "403", "409", "422"):
        assert_problem_response(create, status)
    read = doc["paths"]["/v1/merchants/{merchant_id}"]["get"]
    assert read["x-principals"] == ["operator", "merchant"]
    for status in ("401", "403", "404", "429"):
        assert_problem_response(read, status)

    sign_up = doc["paths"]["/v1/consumers"]["post"]
    assert "security" not in sign_up
    assert {"401", "403"}.isdisjoint(sign_up["responses"])
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_every_post_takes_an_idempotency_key(doc: dict[str, Any]) -> None:
    posts = [(path, op) for path, method, op in operations(doc) if method == "post"]
    assert len(posts) > 10
    for path, operation in posts:
        assert "Idempotency-Key" in header_params(doc, operation), path
        for status, response in operation["responses"].items():
            assert "Idempotent-Replayed" in response["headers"], (path, status)
    key = resolve(doc, {"$ref": "#/components/parameters/IdempotencyKey"})
    assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    assert "Idempotency-Key" not in header_params(doc, doc["paths"]["/v1/audit"]["get"])


def test_response_headers(doc: dict[str, Any]) -> None:
    for path, method, operation in operations(doc):
        for status, response in operation["responses"].items():
            assert "X-Request-Id" in response["headers"], (path, method, status)
    checkout = doc["paths"]["/v1/checkouts"]["post"]["responses"]
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        checkout["201"]["headers"]
    )
    assert "Retry-After" in checkout["429"]["headers"]
    assert "Retry-After" not in checkout["201"]["headers"]
    login = doc["paths"]["/v1/auth/login"]["post"]["responses"]
    assert {"Retry-After", "RateLimit-Remaining"} <= set(login["429"]["headers"])
    # The operator is not rate limited.
    audit = doc["paths"]["/v1/audit"]["get"]["responses"]
    assert "429" not in audit and "RateLimit-Limit" not in audit["200"]["headers"]
    header = doc["components"]["headers"]["X-Request-Id"]
    assert header["schema"] == {"type": "string"}


def test_operations_with_a_path_id_document_404(doc: dict[str, Any]) -> None:
    for path, method, operation in operations(doc):
        if "{" in path:
            assert_problem_response(operation, "404")
        if method in ("post", "put", "patch", "delete"):
            assert_problem_response(operation, "409")


def test_the_document_states_what_the_validators_enforce(doc: dict[str, Any]) -> None:
    """Found by schemathesis: the document promised less or more than the API does."""
    request_id = resolve(doc, {"$ref": "#/components/parameters/RequestId"})
    assert request_id["schema"] == {"type": "string"}  # any value: replaced, never refused
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
    assert "404" in doc["paths"]["/v1/sandbox/gateway/charges"]["get"]["responses"]
    schemas = doc["components"]["schemas"]
    password = schemas["ConsumerCreate"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (10, 1024)
    assert "oneOf" in schemas["ClockMove"]
    currency = schemas["CheckoutCreate"]["properties"]["currency"]
    assert currency["enum"] == ["AUD", "CAD", "EUR", "GBP", "USD"]
    merchant = schemas["MerchantCreate"]["properties"]
    assert "US" in merchant["country"]["enum"] and "pattern" in merchant["email"]
    # NUL is refused in URLs (400) and bodies (422): no free-form string admits it.
    no_nul = "^[^\\u0000]*$"
    assert schemas["ConsumerCreate"]["properties"]["first_name"]["pattern"] == no_nul
    read = doc["paths"]["/v1/checkouts/{checkout_id}"]["get"]["parameters"][0]
    assert read["schema"]["pattern"] == no_nul


async def test_a_date_time_is_an_rfc_3339_string_not_a_number(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: `?to=0.5` was taken as half a second after 1970."""
    operator = bearer(ADMIN_TOKEN)
    for query in ("to=0.5", "from=1700000000", "to=2026-12-09"):
        r = await client.get(f"/v1/reports/summary?{query}", headers=operator)
        assert_problem(r, 422, "validation_error")
    r = await client.get("/v1/reports/summary?to=2026-12-09T00:00:00Z", headers=operator)
    assert r.status_code == 200, r.text
    r = await client.post("/v1/sandbox/clock", json={"to": 1e10}, headers=operator)
    assert_problem(r, 422, "validation_error")
