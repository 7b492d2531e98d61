"""HTTP adapters: how the platform reaches a provider, sandbox simulator or real."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import httpx

from bnpl.providers import Providers
from bnpl.providers.bureau.base import BureauReport
from bnpl.providers.gateway.base import (
    CardRejected,
    CardToken,
    ChargeOutcome,
    ChargeResult,
    ProviderUnavailable,
)
from bnpl.providers.kyb.base import BusinessCheck
from bnpl.providers.kyc.base import IdentityCheck


def _error_code(response: httpx.Response) -> str:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"
    return str(code)


async def _post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else None
    try:
        return await client.post(path, json=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable("timeout") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(type(exc).__name__) from exc


class HttpCardGateway:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        r = await _post(
            self.client,
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

    async def _money_call(self, path: str, body: dict[str, Any], key: str) -> ChargeResult:
        try:
            r = await _post(self.client, path, body, key)
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
        try:
            r = await self.client.get("/gateway/v1/charges", params={"token": token})
        except httpx.TransportError as exc:
            raise ProviderUnavailable(type(exc).__name__) from exc
        r.raise_for_status()
        data: list[dict[str, Any]] = r.json()["data"]
        return data


def _verified(body: dict[str, Any]) -> tuple[str, Literal["verified", "rejected"], str | None]:
    status: Literal["verified", "rejected"] = (
        "verified" if body["status"] == "verified" else "rejected"
    )
    return body["id"], status, body.get("reason")


class HttpIdentityVerifier:
    def __init__(self, client: httpx.AsyncClient) -> None:
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
        r = await _post(
            self.client,
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
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def verify_business(
        self, *, subject_id: str, legal_name: str, country: str, website: str | None
    ) -> BusinessCheck:
        r = await _post(
            self.client,
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

    def __init__(self, client: httpx.AsyncClient) -> None:
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
        try:
            r = await self.client.post(
                "/bureau/v1/reports",
                json=body,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable("timeout") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(type(exc).__name__) from exc
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

    async def sandbox_calls(self, subject_id: str | None = None) -> int:
        """The sandbox bureau's own count of report requests (for one subject, or all)."""
        params = {"subject_id": subject_id} if subject_id else None
        try:
            r = await self.client.get("/bureau/v1/calls", params=params)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(type(exc).__name__) from exc
        r.raise_for_status()
        calls: int = r.json()["calls"]
        return calls


@dataclass
class ProviderClients:
    providers: Providers
    client: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.client.aclose()


def build_providers(base_url: str, timeout_s: float) -> ProviderClients:
    """HTTP clients for every provider kind behind one connection pool."""
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )
    gateway = HttpCardGateway(client)
    return ProviderClients(
        Providers(
            gateway=gateway,
            kyc=HttpIdentityVerifier(client),
            kyb=HttpBusinessVerifier(client),
            bureau=HttpCreditBureau(client),
        ),
        client,
    )
