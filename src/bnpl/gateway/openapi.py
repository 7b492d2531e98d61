"""The OpenAPI document as the gateway really answers.

FastAPI describes what each route declares. The gateway wraps every route in behaviour of its
own: problem+json errors, bearer principals, rate limits, `Idempotency-Key` and request ids.
That is written into the generated document here, once, instead of on every route.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from bnpl.gateway.auth import ADMITTED
from bnpl.gateway.idempotency import MAX_KEY_LENGTH
from bnpl.gateway.middleware import MAX_REQUEST_ID_LENGTH

Spec = dict[str, Any]
Operation = tuple[str, str]  # (path template, lower-case method)

PROBLEM_JSON = "application/problem+json"
BEARER = "bearer"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Only merchants and consumers are rate limited (API.md); the operator is not.
_RATE_LIMITED = {"merchant", "consumer"}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


SCHEMAS: Spec = {
    "Problem": {
        "title": "Problem",
        "description": "RFC 9457 problem details; `code` is the machine-readable error code.",
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "examples": ["validation_error"]},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": _ref("schemas", "FieldError")},
        },
    },
    "FieldError": {
        "title": "FieldError",
        "description": "What is wrong with one field (never the value that was sent).",
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    },
}

SECURITY_SCHEMES: Spec = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator token, a merchant's secret key (`sk_test_...`) or a "
        "consumer's access token from `POST /v1/auth/login`; `x-principals` on each "
        "operation says which of them it admits.",
    }
}

HEADERS: Spec = {
    "X-Request-Id": {
        "description": "The client's `X-Request-Id` if it sent 1-1024 printable ASCII "
        "characters, a new id otherwise.",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` on the stored answer to an earlier request with the same "
        "Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed per window.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window has room again.",
        "schema": {"type": "integer"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    },
}

PARAMETERS: Spec = {
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Within 24 hours, the same key with the same body replays the first "
        "answer (nothing happens twice); with another body it is 409 "
        "`idempotency_key_reused`.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    },
    "RequestId": {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        # Any value is accepted: a tracing header never makes a request fail. One of 1-1024
        # printable ASCII characters is echoed and kept in audit records; another is replaced.
        "description": "Echoed in the answer's `X-Request-Id` and kept in audit records when "
        f"it is 1-{MAX_REQUEST_ID_LENGTH} printable ASCII characters; any other value is "
        "replaced by a new id (the request is not refused).",
        "schema": {"type": "string"},
    },
}

ERRORS: dict[str, str] = {
    "400": "Malformed: the body is not JSON, the URL holds a NUL character, or the "
    "Idempotency-Key is not 1-255 characters (`validation_error`).",
    "401": "Missing or invalid credentials (`unauthenticated`).",
    "403": "Not for this kind of principal (`forbidden`), or the merchant is suspended "
    "(`merchant_suspended`).",
    "404": "No such resource, or it belongs to someone else (`not_found`).",
    "408": "The body did not arrive in time (`request_timeout`).",
    "409": "A conflict with the resource's state, or an Idempotency-Key used with another "
    "request (`idempotency_key_reused`) or still in progress "
    "(`idempotency_request_in_progress`).",
    "413": "The body is larger than the server accepts (`payload_too_large`).",
    "422": "Not valid (`validation_error`, with `errors`), or against a business rule.",
    "429": "Too many requests (`rate_limited`).",
    "503": "Overloaded (`overloaded`, with `Retry-After`), or a provider is unavailable.",
}


def install_openapi(app: FastAPI) -> None:
    """Serve the generated document with the gateway's behaviour written in (built once)."""

    def openapi() -> Spec:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = describe_gateway(spec, admitted_principals(app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def admitted_principals(routes: Sequence[BaseRoute]) -> dict[Operation, tuple[str, ...]]:
    """The kinds of principal each guarded operation admits (by its gateway guard)."""
    found: dict[Operation, tuple[str, ...]] = {}
    # Included routers are resolved lazily (FastAPI 0.165): walk them as `get_openapi` does.
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or route.path_format is None:
            continue
        kinds = next((ADMITTED[c] for c in _calls(route.dependant) if c in ADMITTED), None)
        if kinds is None:
            continue  # public
        for method in route.methods or ():
            found[(route.path_format, method.lower())] = kinds
    return found


def guarded_paths(routes: Sequence[BaseRoute]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every route a guard protects: those that need credentials."""
    found = []
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or route.path_regex is None:
            continue
        if any(c in ADMITTED for c in _calls(route.dependant)):
            found.append((route.path_regex, frozenset(route.methods or ())))
    return found


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def describe_gateway(spec: Spec, admitted: dict[Operation, tuple[str, ...]]) -> Spec:
    """Write problem+json errors, security, idempotency and the gateway's headers in."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    # FastAPI's own error models: the gateway never answers with them.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(SCHEMAS)
    components["securitySchemes"] = SECURITY_SCHEMES
    components["headers"] = HEADERS
    components["parameters"] = PARAMETERS
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _describe(item[method], path, method, admitted.get((path, method), ()))
                for parameter in item[method].get("parameters", []):
                    _no_nul(parameter.get("schema", {}))
    for schema in schemas.values():
        _no_nul(schema)
    return spec


# PostgreSQL cannot store NUL in text: the gateway refuses it in a URL (400) and a body that
# holds one is refused before it changes anything (422), so no string of the API admits it.
NO_NUL = "^[^\\u0000]*$"


def _no_nul(schema: Spec) -> None:
    """Write "no NUL" into every free-form string of `schema` (one without a pattern, an
    enum or a constant of its own; those that have one are checked as they say)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    if schema.get("type") == "string" and not {"pattern", "enum", "const"} & set(schema):
        schema["pattern"] = NO_NUL
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            _no_nul(sub)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            _no_nul(schema[key])
    for sub in schema.get("properties", {}).values():
        _no_nul(sub)


def _describe(operation: Spec, path: str, method: str, principals: tuple[str, ...]) -> None:
    responses: Spec = operation.setdefault("responses", {})
    rate_limited = bool(_RATE_LIMITED.intersection(principals))
    for status in _error_statuses(path, method, principals, rate_limited):
        responses.setdefault(status, {})
    operation["responses"] = dict(sorted(responses.items()))
    parameters = operation.setdefault("parameters", [])
    parameters.append(_ref("parameters", "RequestId"))
    if method == "post":
        parameters.append(_ref("parameters", "IdempotencyKey"))
    if principals:
        operation["security"] = [{BEARER: []}]
        operation["x-principals"] = list(principals)
    for status, response in operation["responses"].items():
        _describe_response(status, response, method, rate_limited)


def _error_statuses(
    path: str, method: str, principals: tuple[str, ...], rate_limited: bool
) -> list[str]:
    statuses = ["400"]  # the gateway refuses a malformed URL before any route
    if principals:
        statuses += ["401", "403"]
    if "{" in path:
        statuses.append("404")
    if method in ("post", "put", "patch"):
        statuses += ["408", "413"]  # the gateway's body limits (`gateway/body.py`)
    if method in ("post", "put", "patch", "delete"):
        statuses.append("409")
    if rate_limited:
        statuses.append("429")
    return statuses


def _describe_response(status: str, response: Spec, method: str, rate_limited: bool) -> None:
    headers = response.setdefault("headers", {})
    headers["X-Request-Id"] = _ref("headers", "X-Request-Id")
    if method == "post":
        headers["Idempotent-Replayed"] = _ref("headers", "Idempotent-Replayed")
    if rate_limited or status == "429":
        for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            headers[name] = _ref("headers", name)
    if status in ("429", "503"):
        headers["Retry-After"] = _ref("headers", "Retry-After")
    if status[0] in "45":
        # Every failure, whoever raises it, is rendered as problem+json (`bnpl.app`).
        response["content"] = {PROBLEM_JSON: {"schema": _ref("schemas", "Problem")}}
        if status in ERRORS:
            response["description"] = ERRORS[status]
        response.setdefault("description", "Problem details")
