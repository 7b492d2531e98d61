"""The HTTP application: gateway middleware, problem+json errors, the contexts' routers."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from bnpl import contexts
from bnpl.bootstrap import Roles, start_platform
from bnpl.config import Settings
from bnpl.gateway import CredentialResolvers
from bnpl.gateway.idempotency import IdempotencyStore
from bnpl.gateway.middleware import GatewayMiddleware
from bnpl.gateway.openapi import guarded_paths, install_openapi
from bnpl.gateway.server import configure_shared_port_protocol
from bnpl.kit.crypto import field_cipher
from bnpl.kit.errors import FieldError, ProblemError, problem_body
from bnpl.kit.gc_tuning import tune_for_service
from bnpl.logs import configure_logging

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


def _problem_response(
    status: int,
    code: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, errors),
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _allowed(request: Request) -> list[str]:
    """Every method some route serves at this request's path (the `Allow` of a 405)."""
    path = request.url.path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path_regex is not None and route.path_regex.match(path):
            methods.update(route.methods or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return _problem_response(exc.status, exc.code, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the input back: it may hold a card number or a password.
        errors = [
            FieldError(_field_path(tuple(e.get("loc", ()))), str(e.get("msg", "invalid")))
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return _problem_response(400, "validation_error", "The body is not valid JSON.", errors)
        return _problem_response(422, "validation_error", "The request is not valid.", errors)

    # A string PostgreSQL cannot store (a NUL, from a JSON body's \u0000) fails at the first
    # statement that carries it; its transaction has rolled back by the time this answers,
    # so the request changed nothing and its answer may be stored for an Idempotency-Key.
    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(asyncpg.UntranslatableCharacterError)
    async def _unstorable(_: Request, exc: asyncpg.DataError) -> JSONResponse:
        return _problem_response(
            422,
            "validation_error",
            "The request holds a character that cannot be stored (such as NUL).",
            [FieldError("body", "must not contain NUL characters")],
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}
        code = codes.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names only the methods of the first route whose path matched; a path
            # served by several routes (GET and PATCH /v1/merchants/{id}) allows them all.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return _problem_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _problem_response(500, "internal_error", "Something went wrong on our side.")


def create_app(
    settings: Settings | None = None,
    roles: Roles = Roles(),
    services: set[str] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    resolvers = CredentialResolvers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_platform(settings, roles) as rt:
            app.state.runtime = rt
            app.state.idempotency = IdempotencyStore(
                rt.db,
                settings.idempotency_ttl_s,
                settings.idempotency_lock_timeout_s,
                field_cipher(settings.aes_key),
            )
            resolvers.merchant_key = rt.resolvers.merchant_key
            resolvers.access_token = rt.resolvers.access_token
            yield

    app = FastAPI(
        title="BNPL platform API",
        version="1.0.0",
        description="Buy now, pay later: checkouts, credit decisions, installment plans.",
        lifespan=lifespan,
    )
    guarded: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def needs_credentials(method: str, path: str) -> bool:
        """Whether a guard protects the route of `method path` (routes read once)."""
        if not guarded:
            guarded.extend(guarded_paths(app.routes))
        return any(method in methods and rx.match(path) for rx, methods in guarded)

    app.add_middleware(
        GatewayMiddleware,
        admin_token=settings.admin_token,
        resolvers=resolvers,
        limiter=lambda: app.state.runtime.limiter,
        idempotency=lambda: app.state.idempotency,
        merchant_rule=settings.rate_limit_merchant,
        consumer_rule=settings.rate_limit_consumer,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.http_body_timeout_s,
        needs_credentials=needs_credentials,
    )
    install_error_handlers(app)
    install_openapi(app)
    for router in contexts.routers(services):
        app.include_router(router)
    return app


def api_from_env() -> FastAPI:
    """The API of one `bnpl serve --workers N` process (uvicorn's factory): settings from the
    environment, no workers, the routers of `BNPL_SERVICES` (comma-separated; default all)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    configure_shared_port_protocol(settings)
    services = os.environ.get("BNPL_SERVICES")
    chosen = {s.strip() for s in services.split(",")} if services else None
    app = create_app(settings, Roles(workers=False, migrate=False), chosen)
    tune_for_service()
    return app
