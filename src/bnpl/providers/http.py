"""HTTP adapters: how the platform reaches a provider, sandbox simulator or real.

On pyreqwest (Rust's reqwest and hyper): a collection run keeps dozens of gateway calls in
flight, and a call's own CPU is most of what a collection costs the worker. Measured on this
machine with 64 calls in flight: httpx's pool checked every pooled connection on each
request; aiohttp spent about 240 µs of CPU per call, pyreqwest 110-150 µs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError

from bnpl.providers import Providers
from bnpl.providers.bureau.base import BureauReport, BureauSubject
from bnpl.providers.gateway.base import (
    CardRejected,
    CardToken,
    ChargeOutcome,
    ChargeResult,
    ProviderUnavailable,
)
from bnpl.providers.kyb.base import BusinessCheck
from bnpl.providers.kyc.base import IdentityCheck
from bnpl.providers.messages.base import MessageResult
from bnpl.providers.payouts.base import PayoutResult

_JSON = "application/json"
# The sandbox simulators' bulk calls (seeding tens of thousands of test consumers at once).
_BULK_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer: its status and its JSON body (None if it had none)."""

    status_code: int
    body: Any

    def json(self) -> Any:
        if self.body is None:
            raise ValueError("the answer had no JSON body")
        return self.body


class ProviderClient:
    """One connection pool to a provider's base URL, answering `Answer`s.

    `timeout_s` bounds each whole call (connecting at most 2 s of it); a call may ask for a
    shorter one. A timeout or a transport failure is `ProviderUnavailable`.
    """

    def __init__(self, base_url: str, timeout_s: float, max_connections: int = 200) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._connections = max_connections
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:  # created on first use, inside the running loop
            self._client = (
                ClientBuilder()
                .timeout(timedelta(seconds=self.timeout_s))
                .connect_timeout(timedelta(seconds=min(self.timeout_s, 2.0)))
                .max_connections(self._connections)
                .error_for_status(False)
                .build()
            )
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Answer:
        call = self.client.request(method, self.base_url + path)
        if body is not None:
            call = call.header("Content-Type", _JSON).body_bytes(orjson.dumps(body))
        if key:
            call = call.header("Idempotency-Key", key)
        if params:
            call = call.query(params)
        if timeout is not None:
            call = call.timeout(timedelta(seconds=timeout))
        try:
            response = await call.build().send()
            raw = await response.bytes()
        except PyreqwestError as exc:  # timeouts, refused or broken connections
            raise ProviderUnavailable(_failure(exc)) from exc
        try:
            parsed = orjson.loads(memoryview(raw)) if len(raw) else None
        except orjson.JSONDecodeError:
            parsed = None
        return Answer(response.status, parsed)

    async def post(
        self, path: str, body: dict[str, Any], key: str | None = None, timeout: float | None = None
    ) -> Answer:
        return await self.request("POST", path, body=body, key=key, timeout=timeout)

    async def get(self, path: str, params: dict[str, str] | None = None) -> Answer:
        answer = await self.request("GET", path, params=params)
        if answer.status_code != 200:
            raise ProviderUnavailable(f"{path} answered {answer.status_code}")
        return answer

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _failure(exc: PyreqwestError) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


def _error_code(response: Answer) -> str:
    try:
        code = response.body["error"]["code"]
    except (KeyError, TypeError):
        return f"http_{response.status_code}"
    return str(code)


class HttpCardGateway:
    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        r = await self.client.post(
            "/gateway/v1/tokens",
            {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc},
        )
        if r.status_code >= 500:
            raise ProviderUnavailable(f"gateway answered {r.status_code}")
        if r.status_code >= 400:
            raise CardRejected(_error_code(r), "the gateway refused the card")
        body = r.json()
        return CardToken(
            body["token"], body["brand"], body["last4"], body["exp_month"], body["exp_year"]
        )

    async def sandbox_tokenize_many(
        self, number: str, exp_month: int, exp_year: int, cvc: str, count: int
    ) -> list[CardToken]:
        """Sandbox only: `count` tokens of one test card in one call (bulk seeding)."""
        r = await self.client.post(
            "/gateway/v1/tokens/batch",
            {
                "number": number,
                "exp_month": exp_month,
                "exp_year": exp_year,
                "cvc": cvc,
                "count": count,
            },
            timeout=_BULK_TIMEOUT_S,
        )
        if r.status_code >= 500:
            raise ProviderUnavailable(f"gateway answered {r.status_code}")
        if r.status_code >= 400:
            raise CardRejected(_error_code(r), "the gateway refused the card")
        body = r.json()
        brand, last4 = body["brand"], body["last4"]
        return [
            CardToken(token, brand, last4, body["exp_month"], body["exp_year"])
            for token in body["tokens"]
        ]

    async def _money_call(self, path: str, body: dict[str, Any], key: str) -> ChargeResult:
        try:
            r = await self.client.post(path, body, key)
        except ProviderUnavailable as exc:
            return ChargeResult(ChargeOutcome.TRANSIENT, str(exc), None)
        if r.status_code >= 500:
            return ChargeResult(ChargeOutcome.TRANSIENT, _error_code(r), None)
        if r.status_code >= 400:
            return ChargeResult(ChargeOutcome.DECLINED, _error_code(r), None)
        return ChargeResult(ChargeOutcome.SUCCEEDED, None, r.json()["id"])

    async def charge(
        self, token: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        return await self._money_call(
            "/gateway/v1/charges",
            {"token": token, "amount": amount, "currency": currency},
            idempotency_key,
        )

    async def refund(
        self, charge_reference: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        return await self._money_call(
            "/gateway/v1/refunds",
            {"charge": charge_reference, "amount": amount, "currency": currency},
            idempotency_key,
        )

    async def list_charges(self, token: str) -> list[dict[str, Any]]:
        """The sandbox gateway's own record of what it charged a card."""
        r = await self.client.get("/gateway/v1/charges", params={"token": token})
        data: list[dict[str, Any]] = r.json()["data"]
        return data


def _verified(body: dict[str, Any]) -> tuple[str, Literal["verified", "rejected"], str | None]:
    status: Literal["verified", "rejected"] = (
        "verified" if body["status"] == "verified" else "rejected"
    )
    return body["id"], status, body.get("reason")


class HttpIdentityVerifier:
    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def verify_identity(
        self,
        *,
        subject_id: str,
        first_name: str,
        last_name: str,
        date_of_birth: date,
        country: str,
    ) -> IdentityCheck:
        r = await self.client.post(
            "/kyc/v1/checks",
            {
                "subject_id": subject_id,
                "first_name": first_name,
                "last_name": last_name,
                "date_of_birth": date_of_birth.isoformat(),
                "country": country,
            },
        )
        if r.status_code != 200:
            raise ProviderUnavailable(f"KYC provider answered {r.status_code}")
        return IdentityCheck(*_verified(r.json()))


class HttpBusinessVerifier:
    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def verify_business(
        self, *, subject_id: str, legal_name: str, country: str, website: str | None
    ) -> BusinessCheck:
        r = await self.client.post(
            "/kyb/v1/checks",
            {
                "subject_id": subject_id,
                "legal_name": legal_name,
                "country": country,
                "website": website,
            },
        )
        if r.status_code != 200:
            raise ProviderUnavailable(f"KYB provider answered {r.status_code}")
        return BusinessCheck(*_verified(r.json()))


class HttpCreditBureau:
    """The bureau's report API. `timeout` bounds each phase of the HTTP call; the caller
    that needs a hard deadline on the whole call wraps it (`bureau.GuardedBureau`)."""

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def report(
        self,
        *,
        subject_id: str,
        first_name: str,
        last_name: str,
        date_of_birth: date,
        country: str,
        timeout: float | None = None,
    ) -> BureauReport:
        body = {
            "subject_id": subject_id,
            "first_name": first_name,
            "last_name": last_name,
            "date_of_birth": date_of_birth.isoformat(),
            "country": country,
        }
        r = await self.client.post("/bureau/v1/reports", body, timeout=timeout)
        if r.status_code != 200:
            raise ProviderUnavailable(f"bureau answered {r.status_code}")
        try:
            data = r.json()
            score = data.get("score")
            report = BureauReport(
                str(data["id"]), bool(data["found"]), None if score is None else int(score)
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable("malformed bureau answer") from exc
        return report

    async def sandbox_reports(
        self, subjects: Sequence[BureauSubject]
    ) -> dict[str, BureauReport | None]:
        """Sandbox only: the reports of many subjects in one call (bulk seeding); None for
        a subject the bureau could not answer."""
        r = await self.client.post(
            "/bureau/v1/reports/batch",
            {
                "subjects": [
                    {
                        "subject_id": s.subject_id,
                        "first_name": s.first_name,
                        "last_name": s.last_name,
                        "date_of_birth": s.date_of_birth.isoformat(),
                        "country": s.country,
                    }
                    for s in subjects
                ]
            },
            timeout=_BULK_TIMEOUT_S,
        )
        if r.status_code != 200:
            raise ProviderUnavailable(f"bureau answered {r.status_code}")
        found: dict[str, BureauReport | None] = {}
        try:
            for data in r.json()["reports"]:
                score = data.get("score")
                found[str(data["subject_id"])] = (
                    None
                    if "error" in data
                    else BureauReport(
                        str(data["id"]), bool(data["found"]), None if score is None else int(score)
                    )
                )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable("malformed bureau answer") from exc
        return found

    async def sandbox_calls(self, subject_id: str | None = None) -> int:
        """The sandbox bureau's own count of report requests (for one subject, or all)."""
        params = {"subject_id": subject_id} if subject_id else None
        r = await self.client.get("/bureau/v1/calls", params=params)
        calls: int = r.json()["calls"]
        return calls


class HttpPayoutProvider:
    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def pay_out(
        self,
        *,
        amount: int,
        currency: str,
        account_number: str,
        routing_number: str | None,
        reference: str,
        idempotency_key: str,
    ) -> PayoutResult:
        body = {
            "amount": amount,
            "currency": currency,
            "account_number": account_number,
            "routing_number": routing_number,
            "reference": reference,
        }
        r = await self.client.post("/payouts/v1/payouts", body, key=idempotency_key)
        if r.status_code == 200:
            try:
                return PayoutResult(str(r.json()["id"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderUnavailable("malformed payout answer") from exc
        if r.status_code in (400, 402, 422):
            return PayoutResult(None, _error_code(r))
        raise ProviderUnavailable(f"payout provider answered {r.status_code}")

    async def sandbox_payouts(self, reference: str) -> list[dict[str, Any]]:
        """The sandbox provider's own record of the payouts it made for `reference`."""
        r = await self.client.get("/payouts/v1/payouts", params={"reference": reference})
        payouts: list[dict[str, Any]] = r.json()["data"]
        return payouts


class HttpMessenger:
    """The SMS and the push provider (the sandbox serves both under one base URL)."""

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def _send(self, path: str, body: dict[str, Any], key: str) -> MessageResult:
        r = await self.client.post(path, body, key=key)
        if r.status_code in (200, 201):
            try:
                return MessageResult(str(r.json()["id"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderUnavailable("malformed message answer") from exc
        if r.status_code in (400, 402, 422):
            return MessageResult(None, _error_code(r))
        raise ProviderUnavailable(f"{path} answered {r.status_code}")

    async def send_sms(self, *, to: str, body: str, idempotency_key: str) -> MessageResult:
        return await self._send("/sms/v1/messages", {"to": to, "body": body}, idempotency_key)

    async def send_push(
        self, *, user_id: str, title: str, body: str, idempotency_key: str
    ) -> MessageResult:
        return await self._send(
            "/push/v1/messages",
            {"user_id": user_id, "title": title, "body": body},
            idempotency_key,
        )


@dataclass
class ProviderClients:
    providers: Providers
    client: ProviderClient

    async def aclose(self) -> None:
        await self.client.aclose()


def build_providers(base_url: str, timeout_s: float) -> ProviderClients:
    """HTTP clients for every provider kind behind one connection pool."""
    client = ProviderClient(base_url, timeout_s)
    messenger = HttpMessenger(client)
    return ProviderClients(
        Providers(
            gateway=HttpCardGateway(client),
            kyc=HttpIdentityVerifier(client),
            kyb=HttpBusinessVerifier(client),
            bureau=HttpCreditBureau(client),
            payouts=HttpPayoutProvider(client),
            sms=messenger,
            push=messenger,
        ),
        client,
    )
