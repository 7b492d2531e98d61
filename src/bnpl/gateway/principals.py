"""The three principals of API.md and how a request's credentials resolve to one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Operator:
    kind: Literal["operator"] = "operator"

    @property
    def actor(self) -> str:
        return "operator"

    @property
    def owner(self) -> str:
        return "operator"


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    key_id: str
    suspended: bool = False
    kind: Literal["merchant"] = "merchant"

    @property
    def actor(self) -> str:
        return f"merchant:{self.merchant_id}"

    @property
    def owner(self) -> str:
        return self.merchant_id


@dataclass(frozen=True, slots=True)
class Consumer:
    consumer_id: str
    session_id: str
    kind: Literal["consumer"] = "consumer"

    @property
    def actor(self) -> str:
        return f"consumer:{self.consumer_id}"

    @property
    def owner(self) -> str:
        return self.consumer_id


@dataclass(frozen=True, slots=True)
class Anonymous:
    kind: Literal["anonymous"] = "anonymous"

    @property
    def actor(self) -> str:
        return "anonymous"

    @property
    def owner(self) -> str:
        return "anonymous"


@dataclass(frozen=True, slots=True)
class InvalidCredentials:
    """Credentials were sent but did not resolve: every protected endpoint answers 401."""

    kind: Literal["invalid"] = "invalid"

    @property
    def actor(self) -> str:
        return "anonymous"

    @property
    def owner(self) -> str:
        return "anonymous"


Principal = Operator | Merchant | Consumer | Anonymous | InvalidCredentials

# Resolvers are provided by the contexts that own the credentials (merchants own API keys,
# identity owns sessions) and wired in by the app, so the gateway depends on no context.
MerchantKeyResolver = Callable[[str], Awaitable[Merchant | None]]
AccessTokenResolver = Callable[[str], Awaitable[Consumer | None]]


@dataclass
class CredentialResolvers:
    merchant_key: MerchantKeyResolver | None = None
    access_token: AccessTokenResolver | None = None
