"""The process-wide runtime: the engines and clients every context is handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bnpl.config import Settings
from bnpl.gateway.principals import CredentialResolvers
from bnpl.gateway.ratelimit import RateLimiter
from bnpl.kit.clock import Clock
from bnpl.kit.db import Database
from bnpl.messaging import PostgresBus
from bnpl.providers import Providers
from bnpl.scheduler import Scheduler


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    bus: PostgresBus
    scheduler: Scheduler
    limiter: RateLimiter
    providers: Providers
    # Filled by the contexts that own credentials (merchants: API keys; identity: tokens).
    resolvers: CredentialResolvers = field(default_factory=CredentialResolvers)
    # Late-bound hooks a lower context calls without importing a higher one (dependency
    # inversion keeps context imports pointing one way). Set by the providing context's
    # `register`, e.g. credit provides `credit_summary` for identity's `GET /v1/me`.
    hooks: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    # Per-process engines a context builds in `register` and reads back through its own
    # typed accessor (e.g. credit's model, feature store and bureau breaker).
    components: dict[str, Any] = field(default_factory=dict)
    # Called when the process stops (clients a context opened in `register`).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


HookConn = asyncpg.Connection
