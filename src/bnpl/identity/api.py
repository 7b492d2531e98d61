"""Consumers, authentication and payment methods (API.md, "Consumers and authentication")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from bnpl import audit
from bnpl.gateway import (
    ConsumerP,
    OperatorP,
    PerAddressLimit,
    command,
    follow_sandbox_clock,
    runtime,
)
from bnpl.identity import service
from bnpl.identity.schemas import (
    ConsumerCreate,
    ConsumerOut,
    CreditLimitSet,
    LoginRequest,
    PaymentMethodCreate,
    PaymentMethodOut,
    RefreshRequest,
    TokenPair,
)
from bnpl.kit.errors import ProblemError, not_found
from bnpl.kit.pagination import Page, PageParams, make_page, page_params

router = APIRouter(tags=["consumers"])

ConsumerId = Annotated[str, Path(min_length=1, max_length=64)]
PaymentMethodId = Annotated[str, Path(min_length=1, max_length=64)]


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"description": "Problem details", "content": {"application/problem+json": {}}}
        for s in statuses
    }


def _no_store(response: Response) -> Response:
    # Token responses must never be cached (RFC 6749, section 5.1).
    response.headers["Cache-Control"] = "no-store"
    return response


def invalid_refresh_token() -> ProblemError:
    return ProblemError(401, "invalid_refresh_token", "The refresh token is not valid.")


# --- consumers --------------------------------------------------------------------------------


@router.post(
    "/v1/consumers",
    status_code=201,
    response_model=ConsumerOut,
    responses=_problems(409, 422, 429, 503),
    dependencies=[PerAddressLimit],
)
async def create_consumer(body: ConsumerCreate, request: Request) -> Response:
    """Sign a consumer up (public). KYC then runs in the background."""
    password_hash = await service.hash_new_password(
        runtime(request), body.password.get_secret_value()
    )
    async with command(request) as cmd:
        consumer = await service.register_consumer(cmd.conn, cmd.rt, body, password_hash, cmd.at)
        return await cmd.respond(201, consumer, action="consumer.registered", entity_id=consumer.id)


@router.get("/v1/me", response_model=ConsumerOut)
async def get_me(request: Request, consumer: ConsumerP) -> ConsumerOut:
    rt = runtime(request)
    async with rt.db.connection() as conn:
        found = await service.get_consumer(conn, rt, consumer.consumer_id)
    if found is None:
        raise not_found("consumer")
    return found


@router.get("/v1/consumers/{consumer_id}", response_model=ConsumerOut, responses=_problems(404))
async def get_consumer(consumer_id: ConsumerId, request: Request, _: OperatorP) -> ConsumerOut:
    rt = runtime(request)
    async with rt.db.connection() as conn:
        found = await service.get_consumer(conn, rt, consumer_id)
    if found is None:
        raise not_found("consumer")
    return found


@router.put(
    "/v1/consumers/{consumer_id}/credit_limit",
    response_model=ConsumerOut,
    responses=_problems(404, 422),
)
async def set_credit_limit(
    consumer_id: ConsumerId, body: CreditLimitSet, request: Request, _: OperatorP
) -> Response:
    async with command(request) as cmd:
        found = await service.set_credit_limit(cmd.conn, cmd.rt, consumer_id, body.amount)
        if found is None:
            raise not_found("consumer")
        return await cmd.respond(
            200,
            found,
            action="consumer.credit_limit_set",
            entity_id=consumer_id,
            data={"credit_limit": body.amount},
        )


# --- authentication ---------------------------------------------------------------------------


@router.post(
    "/v1/auth/login",
    response_model=TokenPair,
    responses=_problems(401, 429, 503),
    dependencies=[PerAddressLimit],
)
async def login(body: LoginRequest, request: Request) -> Response:
    who = await service.authenticate(runtime(request), body.email, body.password.get_secret_value())
    async with command(request) as cmd:
        issued = await service.start_session(cmd.conn, cmd.rt, who)
        response = await cmd.respond(
            200,
            issued.tokens,
            action="session.created",
            entity_id=issued.session_id,
            data={"consumer_id": who.consumer_id},
        )
    return _no_store(response)


@router.post("/v1/auth/refresh", response_model=TokenPair, responses=_problems(401))
async def refresh(body: RefreshRequest, request: Request) -> Response:
    """Rotate a refresh token. Reusing a spent one revokes its whole session."""
    async with command(request) as cmd:
        outcome = await service.refresh_session(
            cmd.conn, cmd.rt, body.refresh_token.get_secret_value()
        )
        if outcome is None:
            raise invalid_refresh_token()  # rolls back: nothing changed
        if isinstance(outcome, service.Issued):
            response = await cmd.respond(
                200, outcome.tokens, action="session.refreshed", entity_id=outcome.session_id
            )
            return _no_store(response)
        # A replayed token: commit the revocation of its family, then refuse.
        await audit.record(
            cmd.conn,
            actor=cmd.actor,
            action="session.revoked",
            entity_id=outcome.session_id,
            at=cmd.at,
            request_id=cmd.request_id,
            data={"reason": "refresh_token_reused", "consumer_id": outcome.consumer_id},
        )
    raise invalid_refresh_token()


@router.post("/v1/auth/logout", status_code=204, responses=_problems(401, 403))
async def logout(request: Request, consumer: ConsumerP) -> Response:
    """End the caller's session: its access and refresh tokens stop working at once."""
    async with command(request) as cmd:
        await service.end_session(cmd.conn, consumer.session_id)
        return await cmd.respond(
            204,
            None,
            action="session.revoked",
            entity_id=consumer.session_id,
            data={"reason": "logout"},
        )


# --- payment methods --------------------------------------------------------------------------


@router.post(
    "/v1/me/payment_methods",
    status_code=201,
    response_model=PaymentMethodOut,
    responses=_problems(422, 503),
)
async def add_payment_method(
    body: PaymentMethodCreate, request: Request, consumer: ConsumerP
) -> Response:
    """Add a card: it is tokenized with the gateway at once; only the token is kept."""
    await follow_sandbox_clock(request)  # the card's expiry is checked against it
    card = await service.tokenize_card(runtime(request), body.card)
    async with command(request) as cmd:
        pm = await service.add_payment_method(cmd.conn, cmd.rt, consumer.consumer_id, card, cmd.at)
        return await cmd.respond(201, pm, action="payment_method.added", entity_id=pm.id)


@router.get("/v1/me/payment_methods", response_model=Page[PaymentMethodOut])
async def list_payment_methods(
    request: Request,
    consumer: ConsumerP,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PaymentMethodOut]:
    rt = runtime(request)
    async with rt.db.connection() as conn:
        rows = await service.list_payment_methods(
            conn, consumer.consumer_id, page.starting_after, page.limit + 1
        )
    return make_page(rows, page.limit, service.payment_method_out, lambda r: r["id"])


@router.delete(
    "/v1/me/payment_methods/{payment_method_id}", status_code=204, responses=_problems(404)
)
async def delete_payment_method(
    payment_method_id: PaymentMethodId, request: Request, consumer: ConsumerP
) -> Response:
    async with command(request) as cmd:
        removed = await service.remove_payment_method(
            cmd.conn, consumer.consumer_id, payment_method_id, cmd.at
        )
        if not removed:
            raise not_found("payment method")
        return await cmd.respond(
            204, None, action="payment_method.removed", entity_id=payment_method_id
        )
