"""`POST /v1/sandbox/seed`: thousands of active merchants and hundreds of thousands of
verified consumers in seconds, for load tests (`bnpl bench`). Sandbox and operator only.

Through the public API a consumer costs an argon2 hash at sign-up and another at login, and
KYC and KYB run asynchronously, so a load test could not set up enough distinct consumers to
keep credit limits and the velocity rule out of what it measures. Here each context writes its
own rows in bulk (`identity.bulk`, `merchants.bulk`, `credit.bulk`, COPY, a few statements
whatever the count) in one transaction, and this module only orchestrates:

1. the people to create and one argon2 hash of the password they share (identity);
2. the gateway simulator tokenizes the test card once per consumer, and the bureau simulator
   answers for every consumer (sandbox providers, bulk calls), outside the transaction;
3. merchants with a key each, consumers with their card and a live session, credit accounts
   with the default limit and the bureau answer cached as `credit.prefetch_bureau` caches it;
   one audit record for the whole seed.

No events are emitted: the rows are born in the state the events would have led to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bnpl import credit, identity, merchants
from bnpl.gateway import command, runtime
from bnpl.kit.clock import wall_now
from bnpl.kit.errors import FieldError, ProblemError, not_found
from bnpl.kit.wire import Integer
from bnpl.providers import CardRejected, CardToken, ProviderUnavailable
from bnpl.providers.bureau import BureauReport, BureauSubject

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

MAX_MERCHANTS: Final = 10_000  # per call; call again for more
MAX_CONSUMERS: Final = 50_000


@runtime_checkable
class SandboxTokens(Protocol):
    """A gateway adapter that can have the sandbox simulator tokenize one card many times."""

    async def sandbox_tokenize_many(
        self, number: str, exp_month: int, exp_year: int, cvc: str, count: int
    ) -> list[CardToken]: ...


@runtime_checkable
class SandboxBureau(Protocol):
    """A bureau adapter that can ask the sandbox simulator about many subjects at once."""

    async def sandbox_reports(
        self, subjects: Sequence[BureauSubject]
    ) -> dict[str, BureauReport | None]: ...


class SeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    merchants: Integer = Field(default=0, ge=0, le=MAX_MERCHANTS)
    consumers: Integer = Field(default=0, ge=0, le=MAX_CONSUMERS)
    risky: Integer = Field(
        default=0,
        ge=0,
        le=MAX_CONSUMERS,
        description="How many of the consumers are the `Risky` persona (bureau score 300).",
    )
    card: str = Field(
        default="4242424242424242",
        pattern=r"^[0-9]{12,19}$",
        description="The test card every consumer gets (its own token each).",
    )
    password: SecretStr = Field(
        default=SecretStr("correct horse battery"),
        description="Every consumer's password.",
        json_schema_extra=identity.PASSWORD_LENGTH,
    )


class SeededMerchantOut(BaseModel):
    id: str
    api_key_id: str
    secret: str


class SeededConsumerOut(BaseModel):
    id: str
    email: str
    last_name: str
    payment_method_id: str
    access_token: str
    refresh_token: str


class SeedOut(BaseModel):
    merchants: list[SeededMerchantOut]
    consumers: list[SeededConsumerOut]
    token_type: str = "Bearer"  # noqa: S105 (a scheme)
    expires_in: int = Field(description="Seconds the access tokens live.")


def _card_problem(exc: CardRejected) -> ProblemError:
    message = "The gateway refused the card."
    return ProblemError(422, "invalid_card", message, [FieldError("card", message)])


async def _provider_answers(
    rt: Runtime, body: SeedRequest, people: Sequence[identity.bulk.SeedPerson]
) -> tuple[list[CardToken], dict[str, BureauReport | None]]:
    gateway, bureau = rt.providers.gateway, rt.providers.bureau
    if not isinstance(gateway, SandboxTokens) or not isinstance(bureau, SandboxBureau):
        raise not_found("endpoint")  # providers that are not the sandbox simulators
    if not people:
        return [], {}
    exp_year = wall_now().year + 4
    subjects = [
        BureauSubject(p.consumer_id, p.first_name, p.last_name, p.date_of_birth, p.country)
        for p in people
    ]
    try:
        cards, reports = await asyncio.gather(
            gateway.sandbox_tokenize_many(body.card, 12, exp_year, "123", len(people)),
            bureau.sandbox_reports(subjects),
        )
    except CardRejected as exc:
        raise _card_problem(exc) from None
    except ProviderUnavailable as exc:
        raise ProblemError(
            503, "provider_unavailable", "The sandbox providers did not answer."
        ) from exc
    return cards, {p.consumer_id: reports.get(p.consumer_id) for p in people}


async def seed(request: Request, body: SeedRequest) -> Response:
    """Create the merchants and consumers `body` asks for; answer their credentials."""
    if body.risky > body.consumers:
        raise ProblemError(
            422,
            "validation_error",
            "`risky` counts some of the consumers: at most `consumers`.",
            [FieldError("risky", "must not exceed consumers")],
        )
    rt = runtime(request)
    people = identity.bulk.seed_people(body.consumers, risky=body.risky)
    try:
        password_hash = await identity.bulk.seed_password_hash(body.password.get_secret_value())
    except ValueError as exc:
        raise ProblemError(
            422, "weak_password", str(exc), [FieldError("password", str(exc))]
        ) from None
    cards, reports = await _provider_answers(rt, body, people)
    async with command(request) as cmd:
        seeded_merchants = await merchants.bulk.seed_merchants(
            cmd.conn, body.merchants, aes_key=rt.settings.aes_key, at=cmd.at
        )
        seeded_consumers = await identity.bulk.seed_consumers(
            cmd.conn, rt, people, cards, password_hash=password_hash, at=cmd.at, now=wall_now()
        )
        await credit.bulk.seed_accounts(cmd.conn, credit.engine(rt).features, reports, at=cmd.at)
        out = SeedOut(
            merchants=[
                SeededMerchantOut(id=m.merchant_id, api_key_id=m.api_key_id, secret=m.secret)
                for m in seeded_merchants
            ],
            consumers=[
                SeededConsumerOut(
                    id=c.consumer_id,
                    email=c.email,
                    last_name=c.last_name,
                    payment_method_id=c.payment_method_id,
                    access_token=c.access_token,
                    refresh_token=c.refresh_token,
                )
                for c in seeded_consumers
            ],
            expires_in=rt.settings.access_token_ttl_s,
        )
        return await cmd.respond(
            201,
            out,
            action="sandbox.seeded",
            entity_id=None,
            data={"merchants": body.merchants, "consumers": body.consumers, "risky": body.risky},
        )
