"""Identity use cases. They write state, outbox events and audit records in the caller's
transaction and never commit; calls to providers (gateway, KYC) and password hashing happen
before the transaction opens (KYC runs inside its consumer's transaction: the provider is
idempotent by subject id, so a retried event never verifies twice)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from bnpl import audit
from bnpl.gateway import Consumer
from bnpl.identity import crypto, events
from bnpl.identity import repository as repo
from bnpl.identity.domain import (
    KycStatus,
    card_problems,
    kyc_transition_allowed,
    normalize_email,
    password_problem,
)
from bnpl.identity.schemas import (
    Address,
    CardIn,
    ConsumerCreate,
    ConsumerOut,
    PaymentMethodOut,
    TokenPair,
)
from bnpl.kit.clock import wall_now
from bnpl.kit.errors import FieldError, ProblemError, conflict, unprocessable
from bnpl.kit.ids import new_id
from bnpl.providers import CardRejected, CardToken, ProviderUnavailable

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

# Hooks provided by the credit context (`rt.hooks`), so identity never imports credit:
#   credit_summary(conn, consumer_id) -> (credit_limit, available_credit)
#   set_credit_limit(conn, consumer_id, amount) -> None
CREDIT_SUMMARY_HOOK = "credit_summary"
SET_CREDIT_LIMIT_HOOK = "set_credit_limit"


def cipher(rt: Runtime) -> crypto.FieldCipher:
    return crypto.field_cipher(rt.settings.aes_key)


# --- consumers --------------------------------------------------------------------------------


def overloaded() -> ProblemError:
    return ProblemError(
        503,
        "overloaded",
        "Too many sign-ins are being processed; try again in a moment.",
        headers={"Retry-After": "1"},
    )


async def hash_new_password(rt: Runtime, password: str) -> str:
    """Check the password policy (422 `weak_password`), then hash it (off the event loop);
    503 `overloaded` when the hashing queue is full."""
    problem = password_problem(password)
    if problem is not None:
        raise unprocessable("weak_password", problem, "password")
    try:
        return await crypto.hash_password(
            password, max_waiting_per_thread=rt.settings.hash_queue_per_thread
        )
    except crypto.HashingOverloaded:
        raise overloaded() from None


async def register_consumer(
    conn: asyncpg.Connection,
    rt: Runtime,
    body: ConsumerCreate,
    password_hash: str,
    at: datetime,
) -> ConsumerOut:
    """Create a consumer (KYC `pending`) and emit `consumer.registered`; 409 `email_taken`."""
    if body.date_of_birth >= at.date() or body.date_of_birth < date(1900, 1, 1):
        raise unprocessable(
            "validation_error", "The date of birth is not plausible.", "date_of_birth"
        )
    consumer_id = new_id("cus")
    box = cipher(rt)
    row = await repo.insert_consumer(
        conn,
        consumer_id=consumer_id,
        email=body.email,
        password_hash=password_hash,
        first_name=body.first_name,
        last_name=body.last_name,
        phone_enc=(
            box.encrypt(body.phone, aad=crypto.aad("consumers", "phone", consumer_id))
            if body.phone is not None
            else None
        ),
        date_of_birth_enc=box.encrypt(
            body.date_of_birth.isoformat(),
            aad=crypto.aad("consumers", "date_of_birth", consumer_id),
        ),
        address_enc=box.encrypt(
            body.address.model_dump_json(),
            aad=crypto.aad("consumers", "address", consumer_id),
        ),
        at=at,
    )
    if row is None:
        raise conflict("email_taken", "An account with this email already exists.")
    await events.emit(conn, events.CONSUMER_REGISTERED, consumer_id, at)
    return await _shape(conn, rt, row)


@dataclass(frozen=True, slots=True)
class Decrypted:
    phone: str | None
    date_of_birth: date
    address: Address


def decrypt_consumer(box: crypto.FieldCipher, row: asyncpg.Record) -> Decrypted:
    consumer_id: str = row["id"]
    phone = (
        box.decrypt(bytes(row["phone_enc"]), aad=crypto.aad("consumers", "phone", consumer_id))
        if row["phone_enc"] is not None
        else None
    )
    dob = box.decrypt(
        bytes(row["date_of_birth_enc"]),
        aad=crypto.aad("consumers", "date_of_birth", consumer_id),
    )
    address = box.decrypt(
        bytes(row["address_enc"]), aad=crypto.aad("consumers", "address", consumer_id)
    )
    return Decrypted(phone, date.fromisoformat(dob), Address.model_validate(json.loads(address)))


async def credit_summary(
    conn: asyncpg.Connection, rt: Runtime, consumer_id: str
) -> tuple[int, int]:
    hook = rt.hooks.get(CREDIT_SUMMARY_HOOK)
    if hook is None:
        raise RuntimeError("the credit context did not provide the `credit_summary` hook")
    limit, available = await hook(conn, consumer_id)
    return int(limit), int(available)


async def _shape(conn: asyncpg.Connection, rt: Runtime, row: asyncpg.Record) -> ConsumerOut:
    clear = decrypt_consumer(cipher(rt), row)
    limit, available = await credit_summary(conn, rt, row["id"])
    return ConsumerOut(
        id=row["id"],
        email=row["email"],
        phone=clear.phone,
        first_name=row["first_name"],
        last_name=row["last_name"],
        date_of_birth=clear.date_of_birth,
        address=clear.address,
        kyc_status=KycStatus(row["kyc_status"]),
        credit_limit=limit,
        available_credit=available,
        created_at=row["created_at"],
    )


async def get_consumer(
    conn: asyncpg.Connection, rt: Runtime, consumer_id: str
) -> ConsumerOut | None:
    row = await repo.get_consumer(conn, consumer_id)
    return await _shape(conn, rt, row) if row is not None else None


async def set_credit_limit(
    conn: asyncpg.Connection, rt: Runtime, consumer_id: str, amount: int
) -> ConsumerOut | None:
    """Set a consumer's credit limit (through the credit context); None if no such consumer."""
    row = await repo.get_consumer(conn, consumer_id, for_update=True)
    if row is None:
        return None
    hook = rt.hooks.get(SET_CREDIT_LIMIT_HOOK)
    if hook is None:
        raise RuntimeError("the credit context did not provide the `set_credit_limit` hook")
    await hook(conn, consumer_id, amount)
    return await _shape(conn, rt, row)


# --- KYC --------------------------------------------------------------------------------------


async def verify_kyc(conn: asyncpg.Connection, rt: Runtime, consumer_id: str) -> KycStatus | None:
    """Run identity verification for a pending consumer; record and announce the outcome.

    Returns the new status, or None when there was nothing to do (unknown or already decided).
    The consumer row stays locked from the read to the update, so two deliveries of the event
    cannot both decide.
    """
    row = await repo.get_consumer(conn, consumer_id, for_update=True)
    if row is None or row["kyc_status"] != KycStatus.PENDING:
        return None
    clear = decrypt_consumer(cipher(rt), row)
    check = await rt.providers.kyc.verify_identity(
        subject_id=consumer_id,
        first_name=row["first_name"],
        last_name=row["last_name"],
        date_of_birth=clear.date_of_birth,
        country=clear.address.country,
    )
    status = KycStatus(check.status)
    if not kyc_transition_allowed(KycStatus(row["kyc_status"]), status):
        return None
    at = rt.clock.now()
    await repo.set_kyc_result(
        conn, consumer_id, status=status, reference=check.reference, reason=check.reason, at=at
    )
    if status is KycStatus.VERIFIED:
        await events.emit(conn, events.CONSUMER_KYC_VERIFIED, consumer_id, at, kyc_status=status)
    else:
        await events.emit(
            conn,
            events.CONSUMER_KYC_REJECTED,
            consumer_id,
            at,
            kyc_status=status,
            reason=check.reason,
        )
    await audit.record(
        conn,
        actor="system",
        action=f"consumer.kyc_{status}",
        entity_id=consumer_id,
        at=at,
        data={"kyc_reference": check.reference, "reason": check.reason},
    )
    return status


# --- authentication ---------------------------------------------------------------------------


def invalid_credentials(headers: dict[str, str] | None = None) -> ProblemError:
    return ProblemError(
        401, "invalid_credentials", "The email or the password is wrong.", headers=headers or {}
    )


def login_limit_key(consumer_id: str | None, email: str) -> str:
    """The failed-login bucket: the account's when the email names one (however the email was
    spelled: the lookup decides, in PostgreSQL's case rules, not Python's), else the email's.
    Hashed: the limiter's store (Redis) has no business holding email addresses."""
    if consumer_id is not None:
        return f"login:account:{consumer_id}"
    return "login:email:" + hashlib.sha256(normalize_email(email).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Authenticated:
    consumer_id: str
    new_password_hash: str | None  # set when the stored hash should be upgraded


async def authenticate(rt: Runtime, email: str, password: str) -> Authenticated:
    """Check an email and password; 401 `invalid_credentials` (the same for an unknown email
    and a wrong password, at the same cost), 429 `rate_limited` after too many failures,
    503 `overloaded` when the hashing queue is full.

    An attempt takes its place in the account's failed-login window (an atomic hit) before
    the password is checked, so concurrent guesses cannot all be checked against a window
    that none of them has filled yet; when no place is left it is refused unchecked. A
    successful login clears the window (docs/architecture.md, "Security decisions").
    """
    async with rt.db.connection() as conn:
        found = await repo.credentials_by_email(conn, email.strip())
    bound = rt.settings.hash_queue_per_thread
    if not crypto.hashing_has_room(bound):
        raise overloaded()  # before taking a place: an attempt that is shed is not counted
    rule = rt.settings.rate_limit_failed_logins
    key = login_limit_key(found["id"] if found is not None else None, email)
    attempt = await rt.limiter.hit(rule, key)
    if not attempt.allowed:
        raise ProblemError(
            429,
            "rate_limited",
            "Too many failed logins for this email; try again later.",
            headers=attempt.headers(),
        )
    try:
        check = await crypto.verify_password(
            found["password_hash"] if found is not None else None,
            password,
            max_waiting_per_thread=bound,
        )
    except crypto.HashingOverloaded:
        # The queue filled up after the look above: the place stays taken, as it does for
        # every attempt let in (erring towards the account, never towards the guesser).
        raise overloaded() from None
    if found is None or not check.ok:
        raise invalid_credentials(attempt.headers())
    await rt.limiter.clear(rule, key)
    rehash = None
    if check.rehash:
        with contextlib.suppress(crypto.HashingOverloaded):  # the upgrade can wait
            rehash = await crypto.hash_password(password, max_waiting_per_thread=bound)
    return Authenticated(found["id"], rehash)


@dataclass(frozen=True, slots=True)
class Issued:
    session_id: str
    tokens: TokenPair


async def _issue(
    conn: asyncpg.Connection, rt: Runtime, consumer_id: str, session_id: str, now: datetime
) -> TokenPair:
    refresh_token = crypto.new_refresh_token()
    await repo.insert_refresh_token(
        conn,
        token_hash=crypto.refresh_token_hash(refresh_token),
        session_id=session_id,
        consumer_id=consumer_id,
        issued_at=now,
        expires_at=now + timedelta(seconds=rt.settings.refresh_token_ttl_s),
    )
    ttl = rt.settings.access_token_ttl_s
    access = crypto.issue_access_token(rt.settings.jwt_key, consumer_id, session_id, now, ttl)
    return TokenPair(access_token=access, refresh_token=refresh_token, expires_in=ttl)


async def start_session(conn: asyncpg.Connection, rt: Runtime, who: Authenticated) -> Issued:
    """Open a session (a new refresh-token family) for an authenticated consumer."""
    now = wall_now()
    if who.new_password_hash is not None:
        await repo.update_password_hash(conn, who.consumer_id, who.new_password_hash, now)
    session_id = new_id("ses")
    await repo.insert_session(conn, session_id, who.consumer_id, now)
    return Issued(session_id, await _issue(conn, rt, who.consumer_id, session_id, now))


@dataclass(frozen=True, slots=True)
class Reused:
    """A spent refresh token came back: its whole session family has been revoked."""

    session_id: str
    consumer_id: str


async def refresh_session(
    conn: asyncpg.Connection, rt: Runtime, refresh_token: str
) -> Issued | Reused | None:
    """Rotate a refresh token: spend it and issue a new pair in the same session.

    None: the token is unknown, expired or its session is revoked (nothing changed).
    `Reused`: the token was already spent, so it has leaked or been replayed; the session is
    revoked (the caller must commit that, then refuse).
    """
    now = wall_now()
    token_hash = crypto.refresh_token_hash(refresh_token)
    spent = await repo.use_refresh_token(conn, token_hash, now)
    if spent is None:
        reused = await repo.spent_refresh_token(conn, token_hash)
        if reused is None:
            return None
        await repo.revoke_session(conn, reused["session_id"], "refresh_token_reused", now)
        return Reused(reused["session_id"], reused["consumer_id"])
    if spent["expires_at"] <= now:
        return None
    if not await repo.session_is_live(conn, spent["session_id"], spent["consumer_id"]):
        return None
    tokens = await _issue(conn, rt, spent["consumer_id"], spent["session_id"], now)
    return Issued(spent["session_id"], tokens)


async def end_session(conn: asyncpg.Connection, session_id: str) -> bool:
    return await repo.revoke_session(conn, session_id, "logout", wall_now())


async def resolve_access_token(rt: Runtime, token: str) -> Consumer | None:
    """The consumer behind an access token: a genuine, unexpired JWT whose session is live."""
    claims = crypto.read_access_token(rt.settings.jwt_key, token)
    if claims is None:
        return None
    async with rt.db.connection() as conn:
        live = await repo.session_is_live(conn, claims.session_id, claims.consumer_id)
    return Consumer(claims.consumer_id, claims.session_id) if live else None


# --- payment methods --------------------------------------------------------------------------


_REJECTIONS = {
    "expired_card": ("card.exp_year", "The card has expired."),
    "invalid_cvc": ("card.cvc", "The CVC is not valid."),
    "invalid_number": ("card.number", "The card number is not valid."),
}


async def tokenize_card(rt: Runtime, card: CardIn) -> CardToken:
    """Check a card and tokenize it with the gateway (422 `invalid_card`, 503 when the gateway
    is unavailable). The number and CVC go nowhere else: not in errors, logs or storage."""
    number, cvc = card.number.get_secret_value(), card.cvc.get_secret_value()
    problems = card_problems(number, card.exp_month, card.exp_year, cvc, rt.clock.today())
    if problems:
        raise ProblemError(
            422,
            "invalid_card",
            problems[0].message,
            [FieldError(p.field, p.message) for p in problems],
        )
    try:
        return await rt.providers.gateway.tokenize(number, card.exp_month, card.exp_year, cvc)
    except CardRejected as exc:
        field, message = _REJECTIONS.get(exc.code, ("card", "The card was refused."))
        raise ProblemError(422, "invalid_card", message, [FieldError(field, message)]) from None
    except ProviderUnavailable:
        raise ProblemError(
            503, "provider_unavailable", "The payment gateway is unavailable; try again."
        ) from None


def _pm_out(row: asyncpg.Record) -> PaymentMethodOut:
    return PaymentMethodOut(
        id=row["id"],
        brand=row["brand"],
        last4=row["last4"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        created_at=row["created_at"],
    )


async def add_payment_method(
    conn: asyncpg.Connection, rt: Runtime, consumer_id: str, card: CardToken, at: datetime
) -> PaymentMethodOut:
    pm_id = new_id("pm")
    row = await repo.insert_payment_method(
        conn,
        pm_id=pm_id,
        consumer_id=consumer_id,
        token_enc=cipher(rt).encrypt(card.token, aad=crypto.aad("payment_methods", "token", pm_id)),
        brand=(card.brand or "unknown").lower(),
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        at=at,
    )
    await events.emit(
        conn,
        events.PAYMENT_METHOD_ADDED,
        consumer_id,
        at,
        payment_method_id=pm_id,
        brand=row["brand"],
    )
    return _pm_out(row)


async def list_payment_methods(
    conn: asyncpg.Connection, consumer_id: str, starting_after: str | None, limit: int
) -> list[asyncpg.Record]:
    return await repo.list_payment_methods(
        conn, consumer_id, starting_after=starting_after, limit=limit
    )


def payment_method_out(row: asyncpg.Record) -> PaymentMethodOut:
    return _pm_out(row)


async def remove_payment_method(
    conn: asyncpg.Connection, consumer_id: str, pm_id: str, at: datetime
) -> bool:
    """Soft-delete a consumer's payment method; False if it is not theirs or already gone."""
    removed = await repo.soft_delete_payment_method(conn, consumer_id, pm_id, at)
    if removed:
        await events.emit(
            conn, events.PAYMENT_METHOD_REMOVED, consumer_id, at, payment_method_id=pm_id
        )
    return removed
