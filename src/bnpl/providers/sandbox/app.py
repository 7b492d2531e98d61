"""The sandbox simulators: a card gateway, an ID-verification (KYC), a business-verification
(KYB), a credit-bureau, a payout, an SMS and a push provider, speaking HTTP like the real
ones, with realistic latency and failures (the SMTP server is `smtp.py`).

Their state lives in PostgreSQL (schema `sandbox`), as a real provider's would live on its
side, so it survives a restart of the platform's processes (the crash tests rely on that).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bnpl.config import Settings
from bnpl.kit.db import Database
from bnpl.kit.embedded import start_embedded_postgres
from bnpl.kit.migrate import migrate
from bnpl.providers.sandbox.cards import (
    CLOSED_ACCOUNT,
    FLAKY_ACCOUNT,
    TEST_CARDS,
    UNREACHABLE_NUMBER,
    Behaviour,
    brand_of,
    luhn_ok,
)
from bnpl.providers.sandbox.smtp import start_smtp_sink

TIMEOUT_HOLD_S = 30.0
CHARGES_PATH = "/gateway/v1/charges"


class TokenRequest(BaseModel):
    number: str = Field(max_length=19)
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2200)
    cvc: str = Field(max_length=4)


class TokenBatchRequest(TokenRequest):
    """Sandbox only: `count` tokens of one test card (bulk seeding of test consumers)."""

    count: int = Field(ge=1, le=100_000)


class ChargeRequest(BaseModel):
    token: str = Field(max_length=80)
    amount: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)


class RefundRequest(BaseModel):
    charge: str = Field(max_length=80)
    amount: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)


class PayoutRequest(BaseModel):
    amount: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    account_number: str = Field(min_length=4, max_length=34)
    routing_number: str | None = Field(default=None, max_length=34)
    reference: str = Field(min_length=1, max_length=80)


class SmsRequest(BaseModel):
    to: str = Field(min_length=4, max_length=20)
    body: str = Field(min_length=1, max_length=1600)


class PushRequest(BaseModel):
    user_id: str = Field(min_length=1, max_length=80)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=2000)


class IdentityRequest(BaseModel):
    subject_id: str
    first_name: str
    last_name: str
    date_of_birth: str
    country: str


class BureauRequest(BaseModel):
    subject_id: str
    first_name: str
    last_name: str
    date_of_birth: str
    country: str


class BureauBatchRequest(BaseModel):
    """Sandbox only: the reports of many subjects at once (bulk seeding of test consumers)."""

    subjects: list[BureauRequest] = Field(max_length=100_000)


class BusinessRequest(BaseModel):
    subject_id: str
    legal_name: str
    country: str
    website: str | None = None


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _charge_body(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "status": row["status"],
        "refunded_amount": row["refunded_amount"],
        "created_at": row["created_at"].isoformat(),
    }


class _Captures:
    """Charges of cards that always succeed, captured in one statement per batch: the
    gateway's own group commit (a collection run sends thousands of charges a second).

    Each waits for the statement its charge is in; one statement is in flight at a time, and
    the charges that arrive meanwhile go in the next. A key already known (or a card that
    does not always succeed) answers None: the caller handles it one by one.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[tuple[str, str, str, int, str], asyncio.Future[Any]]] = []
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None  # held: the loop keeps only a weak one

    async def capture(self, key: str, token: str, amount: int, currency: str) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((("ch_" + secrets.token_hex(12), key, token, amount, currency), done))
        if not self._flushing:
            self._flushing = True
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    rows = await self.db.fetch(
                        """
                        INSERT INTO sandbox.charges
                            (id, idempotency_key, token, amount, currency, status)
                        SELECT c.id, c.key, t.token, c.amount, c.currency, 'captured'
                        FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
                             AS c (id, key, token, amount, currency)
                        JOIN sandbox.card_tokens t
                          ON t.token = c.token AND t.behaviour = 'succeed'
                        ON CONFLICT (idempotency_key) DO NOTHING
                        RETURNING *
                        """,
                        *(list(column) for column in zip(*(p for p, _ in batch), strict=True)),
                    )
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                by_key = {r["idempotency_key"]: r for r in rows}
                for (_, key, *_rest), done in batch:
                    if not done.done():
                        done.set_result(by_key.get(key))
        finally:
            self._flushing = False


class SandboxApp:
    """The simulators' ASGI app. A new charge goes straight to its handler: a collection
    run sends thousands a second, and FastAPI's per-request stack (its middlewares, routing
    and telemetry) cost more than the charge itself. Everything else goes through `api`."""

    def __init__(self, api: FastAPI, charges: Callable[[Request], Awaitable[Response]]) -> None:
        self.api = api
        self._charges = charges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHARGES_PATH and scope["method"] == "POST":
            response = await self._charges(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_sandbox_app(db: Database, latency_ms: int = 20) -> SandboxApp:
    """The simulators as one ASGI app over the platform's database."""
    app = FastAPI(title="BNPL sandbox providers", docs_url=None, redoc_url=None)
    captures = _Captures(db)

    async def latency() -> None:
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000 * random.uniform(0.5, 1.5))  # noqa: S311 (simulated latency)

    # -- card gateway ---------------------------------------------------------------------

    @app.post("/gateway/v1/tokens")
    async def tokenize(body: TokenRequest) -> JSONResponse:
        await latency()
        if (refused := _card_refusal(body)) is not None:
            return refused
        token = "tok_" + secrets.token_hex(12)
        behaviour = TEST_CARDS.get(body.number, Behaviour.SUCCEED)
        brand = brand_of(body.number)
        await db.execute(
            "INSERT INTO sandbox.card_tokens (token, behaviour, brand, last4, exp_month, exp_year) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            token,
            behaviour.value,
            brand,
            body.number[-4:],
            body.exp_month,
            body.exp_year,
        )
        return JSONResponse(
            {
                "token": token,
                "brand": brand,
                "last4": body.number[-4:],
                "exp_month": body.exp_month,
                "exp_year": body.exp_year,
            },
            status_code=201,
        )

    @app.post("/gateway/v1/tokens/batch")
    async def tokenize_batch(body: TokenBatchRequest) -> Response:
        """Sandbox only: `count` tokens of one card in one COPY, so that seeding hundreds of
        thousands of test consumers takes seconds. Each token behaves as the card's would."""
        if (refused := _card_refusal(body)) is not None:
            return refused
        tokens = ["tok_" + secrets.token_hex(12) for _ in range(body.count)]
        behaviour = TEST_CARDS.get(body.number, Behaviour.SUCCEED).value
        brand, last4 = brand_of(body.number), body.number[-4:]
        async with db.connection() as conn:
            await conn.copy_records_to_table(
                "card_tokens",
                schema_name="sandbox",
                columns=["token", "behaviour", "brand", "last4", "exp_month", "exp_year"],
                records=[
                    (t, behaviour, brand, last4, body.exp_month, body.exp_year) for t in tokens
                ],
            )
        answer = {
            "tokens": tokens,
            "brand": brand,
            "last4": last4,
            "exp_month": body.exp_month,
            "exp_year": body.exp_year,
        }
        return Response(orjson.dumps(answer), status_code=201, media_type="application/json")

    async def charge_endpoint(request: Request) -> Response:
        key = request.headers.get("idempotency-key", "")
        if not 0 < len(key) <= 255:
            return _error(400, "idempotency_key_required", "Send an Idempotency-Key.")
        try:
            body = ChargeRequest.model_validate_json(await request.body())
        except ValidationError:
            return _error(422, "invalid_request", "The charge is not valid.")
        return await charge(body, key)

    async def charge(body: ChargeRequest, idempotency_key: str) -> Response:
        await latency()
        # The common case: a new key on a card that always succeeds.
        row = await captures.capture(idempotency_key, body.token, body.amount, body.currency)
        if row is not None:
            return Response(orjson.dumps(_charge_body(row)), media_type="application/json")
        # A known key (answered as the first time), or a card with another behaviour.
        async with db.transaction() as conn:
            card = await conn.fetchrow(
                "SELECT behaviour FROM sandbox.card_tokens WHERE token = $1", body.token
            )
            if card is None:
                return _error(402, "invalid_token", "No such card token.")
            behaviour = Behaviour(card["behaviour"])
            # Serialize attempts of one key; a known key answers as it did before.
            existing = await conn.fetchrow(
                "SELECT * FROM sandbox.charges WHERE idempotency_key = $1 FOR UPDATE",
                idempotency_key,
            )
            if existing is not None:
                if existing["amount"] != body.amount or existing["token"] != body.token:
                    return _error(409, "idempotency_mismatch", "Key reused with other values.")
                attempts = await conn.fetchval(
                    "UPDATE sandbox.charges SET attempts = attempts + 1 WHERE id = $1 "
                    "RETURNING attempts",
                    existing["id"],
                )
                if existing["status"] == "pending":  # FLAKY: failing until the third attempt
                    if attempts < 3:
                        return _error(500, "processing_error", "Try again.")
                    row = await conn.fetchrow(
                        "UPDATE sandbox.charges SET status = 'captured' WHERE id = $1 RETURNING *",
                        existing["id"],
                    )
                    return JSONResponse(_charge_body(row))
                if existing["status"] == "declined":
                    return _decline(existing["decline_code"])
                return JSONResponse(_charge_body(existing))

            succeeded_before = await conn.fetchval(
                "SELECT count(*) FROM sandbox.charges WHERE token = $1 AND status <> 'declined'",
                body.token,
            )
            decline = _decline_code(behaviour, succeeded_before)
            status = "declined" if decline else "captured"
            if behaviour is Behaviour.FLAKY:
                status = "pending"
            row = await conn.fetchrow(
                "INSERT INTO sandbox.charges "
                "(id, idempotency_key, token, amount, currency, status, decline_code) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                "ch_" + secrets.token_hex(12),
                idempotency_key,
                body.token,
                body.amount,
                body.currency,
                status,
                decline,
            )
        if decline:
            return _decline(decline)
        if behaviour is Behaviour.FLAKY:
            return _error(500, "processing_error", "Try again.")
        if behaviour is Behaviour.TIMEOUT_ONCE:
            # Captured, but the answer never comes in time; the retry gets the success.
            await asyncio.sleep(TIMEOUT_HOLD_S)
        return JSONResponse(_charge_body(row))

    @app.post("/gateway/v1/refunds")
    async def refund(
        body: RefundRequest, idempotency_key: Annotated[str, Header(max_length=255)]
    ) -> JSONResponse:
        await latency()
        async with db.transaction() as conn:
            known = await conn.fetchrow(
                "SELECT * FROM sandbox.refunds WHERE idempotency_key = $1", idempotency_key
            )
            if known is not None:
                return JSONResponse(
                    {
                        "id": known["id"],
                        "amount": known["amount"],
                        "charge": known["charge_id"],
                        "status": "succeeded",
                    }
                )
            charged = await conn.fetchrow(
                "SELECT * FROM sandbox.charges WHERE id = $1 FOR UPDATE", body.charge
            )
            if charged is None or charged["status"] not in ("captured", "refunded"):
                return _error(402, "charge_not_refundable", "No captured charge to refund.")
            if charged["refunded_amount"] + body.amount > charged["amount"]:
                return _error(402, "amount_too_large", "Refund exceeds the charge.")
            refund_id = "re_" + secrets.token_hex(12)
            await conn.execute(
                "INSERT INTO sandbox.refunds (id, idempotency_key, charge_id, amount, currency) "
                "VALUES ($1, $2, $3, $4, $5)",
                refund_id,
                idempotency_key,
                body.charge,
                body.amount,
                body.currency,
            )
            await conn.execute(
                "UPDATE sandbox.charges SET refunded_amount = refunded_amount + $2, "
                "status = CASE WHEN refunded_amount + $2 = amount THEN 'refunded' ELSE status END "
                "WHERE id = $1",
                body.charge,
                body.amount,
            )
        return JSONResponse(
            {"id": refund_id, "amount": body.amount, "charge": body.charge, "status": "succeeded"}
        )

    @app.get("/gateway/v1/charges")
    async def list_charges(token: Annotated[str, Query(max_length=80)]) -> JSONResponse:
        rows = await db.fetch(
            "SELECT * FROM sandbox.charges WHERE token = $1 AND status IN ('captured', 'refunded') "
            "ORDER BY created_at, id",
            token,
        )
        return JSONResponse({"data": [_charge_body(r) for r in rows]})

    # -- payouts ---------------------------------------------------------------------------

    @app.post("/payouts/v1/payouts")
    async def pay_out(
        body: PayoutRequest, idempotency_key: Annotated[str, Header(min_length=1, max_length=255)]
    ) -> JSONResponse:
        await latency()
        async with db.transaction() as conn:
            # Serialize the calls of one key; a known key answers as it did before.
            existing = await conn.fetchrow(
                "SELECT * FROM sandbox.payouts WHERE idempotency_key = $1 FOR UPDATE",
                idempotency_key,
            )
            if existing is None:
                last4 = body.account_number[-4:]
                status = {CLOSED_ACCOUNT: "rejected", FLAKY_ACCOUNT: "failing"}.get(last4, "paid")
                row = await conn.fetchrow(
                    "INSERT INTO sandbox.payouts (id, idempotency_key, reference, amount, "
                    "currency, account_last4, routing_number, status, failure_code) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                    "po_" + secrets.token_hex(12),
                    idempotency_key,
                    body.reference,
                    body.amount,
                    body.currency,
                    last4,
                    body.routing_number,
                    status,
                    "account_closed" if status == "rejected" else None,
                )
            elif existing["amount"] != body.amount or existing["reference"] != body.reference:
                return _error(409, "idempotency_mismatch", "Key reused with other values.")
            else:
                row = await conn.fetchrow(
                    "UPDATE sandbox.payouts SET attempts = attempts + 1, status = CASE "
                    "WHEN status = 'failing' AND attempts + 1 >= 3 THEN 'paid' ELSE status END "
                    "WHERE id = $1 RETURNING *",
                    existing["id"],
                )
        if row["status"] == "failing":
            return _error(500, "processing_error", "Try again.")
        if row["status"] == "rejected":
            return _error(402, row["failure_code"], "The account cannot receive payouts.")
        return JSONResponse(_payout_body(row))

    @app.get("/payouts/v1/payouts")
    async def list_payouts(reference: Annotated[str, Query(max_length=80)]) -> JSONResponse:
        rows = await db.fetch(
            "SELECT * FROM sandbox.payouts WHERE reference = $1 AND status = 'paid' "
            "ORDER BY created_at, id",
            reference,
        )
        return JSONResponse({"data": [_payout_body(r) for r in rows]})

    # -- SMS and push ------------------------------------------------------------------------

    async def message(
        channel: str, recipient: str, title: str | None, text: str, key: str
    ) -> JSONResponse:
        await latency()
        if channel == "sms" and recipient.endswith(UNREACHABLE_NUMBER):
            return _error(422, "invalid_number", "The number cannot receive messages.")
        row = await db.fetchrow(
            """
            INSERT INTO sandbox.messages (id, idempotency_key, channel, recipient, title, body)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (idempotency_key) DO UPDATE SET channel = EXCLUDED.channel
            RETURNING id, channel, recipient, created_at
            """,
            "msg_" + secrets.token_hex(12),
            key,
            channel,
            recipient,
            title,
            text,
        )
        assert row is not None
        return JSONResponse(
            {"id": row["id"], "channel": row["channel"], "to": row["recipient"]}, status_code=201
        )

    @app.post("/sms/v1/messages")
    async def send_sms(
        body: SmsRequest, idempotency_key: Annotated[str, Header(min_length=1, max_length=255)]
    ) -> JSONResponse:
        return await message("sms", body.to, None, body.body, idempotency_key)

    @app.post("/push/v1/messages")
    async def send_push(
        body: PushRequest, idempotency_key: Annotated[str, Header(min_length=1, max_length=255)]
    ) -> JSONResponse:
        return await message("push", body.user_id, body.title, body.body, idempotency_key)

    # -- identity and business verification -----------------------------------------------

    async def verification(kind: str, subject_id: str, rejected_reason: str | None) -> JSONResponse:
        await latency()
        row = await db.fetchrow(
            """
            INSERT INTO sandbox.verifications (kind, subject_id, id, status, reason)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (kind, subject_id) DO UPDATE SET kind = EXCLUDED.kind
            RETURNING id, status, reason
            """,
            kind,
            subject_id,
            f"{kind}_" + secrets.token_hex(10),
            "rejected" if rejected_reason else "verified",
            rejected_reason,
        )
        assert row is not None
        return JSONResponse({"id": row["id"], "status": row["status"], "reason": row["reason"]})

    @app.post("/kyc/v1/checks")
    async def verify_identity(body: IdentityRequest) -> JSONResponse:
        reason = "identity_not_verified" if body.last_name == "Fraudster" else None
        return await verification("kyc", body.subject_id, reason)

    @app.post("/kyb/v1/checks")
    async def verify_business(body: BusinessRequest) -> JSONResponse:
        reason = "business_not_verified" if "REJECT" in body.legal_name else None
        return await verification("kyb", body.subject_id, reason)

    # Report requests received, per subject: how a test proves that an open circuit breaker
    # kept the platform from calling at all. In memory: a counter, not provider state.
    bureau_calls: Counter[str] = Counter()

    @app.post("/bureau/v1/reports")
    async def bureau_report(body: BureauRequest) -> JSONResponse:
        """A deterministic score per subject. Sandbox personas by last name: `Thinfile` is
        unknown to the bureau, `Risky` has a poor score (300), `Slowbureau` answers after 2 s,
        `Bureaudown` gets a 503. Everyone else scores well (740-820)."""
        bureau_calls[body.subject_id] += 1
        if body.last_name == "Bureaudown":
            return _error(503, "unavailable", "The bureau is down.")
        if body.last_name == "Slowbureau":
            await asyncio.sleep(2.0)
        await latency()
        return JSONResponse(_bureau_report(body))

    @app.post("/bureau/v1/reports/batch")
    async def bureau_reports(body: BureauBatchRequest) -> Response:
        """Sandbox only: many subjects' reports in one call (bulk seeding), each as
        `/bureau/v1/reports` would answer it, without the latency; a `Bureaudown` subject
        gets `{"subject_id", "error": "unavailable"}`."""
        reports = []
        for subject in body.subjects:
            bureau_calls[subject.subject_id] += 1
            if subject.last_name == "Bureaudown":
                reports.append({"subject_id": subject.subject_id, "error": "unavailable"})
            else:
                reports.append({"subject_id": subject.subject_id, **_bureau_report(subject)})
        return Response(orjson.dumps({"reports": reports}), media_type="application/json")

    @app.get("/bureau/v1/calls")
    async def bureau_call_count(
        subject_id: Annotated[str | None, Query(max_length=80)] = None,
    ) -> dict[str, Any]:
        """How many report requests the bureau received (for `subject_id`, or in all)."""
        calls = bureau_calls[subject_id] if subject_id else sum(bureau_calls.values())
        return {"subject_id": subject_id, "calls": calls}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return SandboxApp(app, charge_endpoint)


def _card_refusal(body: TokenRequest) -> JSONResponse | None:
    """Why the gateway refuses to tokenize this card, if it does."""
    if not luhn_ok(body.number):
        return _error(402, "invalid_number", "The card number is not valid.")
    now = datetime.now(UTC)
    if (body.exp_year, body.exp_month) < (now.year, now.month):
        return _error(402, "expired_card", "The card has expired.")
    if not (body.cvc.isdigit() and len(body.cvc) in (3, 4)):
        return _error(402, "invalid_cvc", "The CVC is not valid.")
    return None


def _bureau_report(body: BureauRequest) -> dict[str, Any]:
    """The bureau's deterministic answer for a subject (the personas by last name)."""
    digest = hashlib.sha256(body.subject_id.encode()).digest()
    found = body.last_name != "Thinfile"
    score = 740 + int.from_bytes(digest[:2], "big") % 81 if found else None
    if body.last_name == "Risky":
        score = 300
    return {"id": "bur_" + digest[:10].hex(), "found": found, "score": score}


def _payout_body(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "reference": row["reference"],
        "amount": row["amount"],
        "currency": row["currency"],
        "account_last4": row["account_last4"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
    }


def _decline_code(behaviour: Behaviour, succeeded_before: int) -> str | None:
    if behaviour is Behaviour.HARD_DECLINE:
        return "card_declined"
    if behaviour is Behaviour.SOFT_DECLINE:
        return "insufficient_funds"
    if behaviour is Behaviour.FIRST_ONLY and succeeded_before > 0:
        return "insufficient_funds"
    return None


def _decline(code: str) -> JSONResponse:
    kind = "hard" if code in ("card_declined", "expired_card") else "soft"
    return _error(402, code, "The charge was declined.", decline=kind)


def standalone_app(settings: Settings, smtp_port: int | None = None) -> SandboxApp:
    """The simulators as their own service (`bnpl sandbox`), with their own pool; with
    `smtp_port`, also the SMTP server that keeps the platform's email (`sandbox.emails`)."""
    dsn = settings.database_url or start_embedded_postgres(settings.pg_data_dir)
    db = Database(dsn, min_size=1, max_size=10)
    app = create_sandbox_app(db, settings.sandbox_latency_ms)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await db.open()
        async with db.connection() as conn:
            await migrate(conn)
        sink = None
        if smtp_port is not None:
            sink = await start_smtp_sink(db, settings.sandbox_host, smtp_port)
        yield
        if sink is not None:
            sink.close()
            await sink.wait_closed()
        await db.close()

    app.api.router.lifespan_context = lifespan
    return app
