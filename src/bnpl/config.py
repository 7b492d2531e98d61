"""Settings from `BNPL_*` environment variables."""

from __future__ import annotations

import base64
import hashlib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BNPL_", extra="ignore")

    env: Environment = Environment.SANDBOX
    database_url: str | None = None
    redis_url: str | None = None
    # Where the credit features live: `auto` is Redis when `redis_url` is set, else
    # PostgreSQL. `bnpl up` says `postgres` when the Redis is its own ephemeral Valkey (the
    # repayment history must outlive a restart; the rate-limit windows need not).
    feature_store: Literal["auto", "postgres", "redis"] = "auto"
    # Set: the bus runs on Kafka (`messaging/kafka`), else on PostgreSQL alone.
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = "bnpl"
    kafka_partitions: int = 6  # of every topic created
    kafka_replication: int = 1  # 3 on a three-broker cluster (`bnpl kafka --brokers 3`)
    kafka_retry_attempts: int = 3  # trips through the retry topic before the dead letters
    kafka_retry_delay_s: float = 1.0
    kafka_session_timeout_ms: int = 10_000  # a dead worker's partitions move after this
    # The event archive (`bnpl lake`): a folder or an URL pyarrow opens (`s3://...`); unset:
    # `<data_dir>/lake`.
    lake_url: str | None = None
    smtp_url: str | None = None
    admin_token: str = "sandbox-admin-token"  # noqa: S105 (sandbox only; refused in production)
    data_dir: Path = Path(".bnpl")
    # The platform's URL as browsers reach it (the hosted checkout's `redirect_url`); unset:
    # the URL each request came to.
    public_url: str | None = None

    # Secrets. In sandbox they default to values derived from the admin token so a laptop
    # needs no set-up; production refuses to start without real ones.
    jwt_secret: str | None = None
    encryption_key: str | None = None  # base64 of 32 bytes (AES-256-GCM)

    # Providers: unset means "run the sandbox simulators in this process".
    providers_url: str | None = None
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 0  # 0: any free port
    provider_timeout_s: float = 5.0
    sandbox_latency_ms: int = 20  # the simulators' base latency

    db_pool_min: int = 2
    db_pool_max: int = 20

    # Gateway.
    rate_limit_merchant: str = "200/2 seconds"  # 100/s sustained with a burst of 200
    rate_limit_consumer: str = "20/second"
    rate_limit_failed_logins: str = "5/minute"
    idempotency_ttl_s: int = 24 * 3600
    # Longer than any request may run (the sandbox clock's longest advance is 280 s), so a
    # claim is only ever taken over from a request that really died.
    idempotency_lock_timeout_s: int = 300
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # Sign-ups and logins per client address (each costs an argon2 hash): a person signs in a
    # few times a minute, a burst of scripted guesses is stopped within a second (docs:
    # architecture.md, "Security decisions").
    rate_limit_per_address: str = "100/second"
    # Comma-separated CIDRs of the reverse proxies whose X-Forwarded-For is believed; empty:
    # the client address is the socket peer's.
    trusted_proxies: str = ""
    # Password hashes allowed to wait per hashing thread; beyond, 503 `overloaded` at once.
    hash_queue_per_thread: int = 8
    # `Authorization: Bearer <token>` that `GET /metrics` admits besides the operator token.
    metrics_token: str | None = None

    # HTTP server (`bnpl up` / `bnpl serve`) and request bodies.
    max_body_bytes: int = 1024 * 1024  # larger bodies: 413 `payload_too_large`
    http_header_timeout_s: float = 10.0  # from a connection's (or request's) first byte
    http_body_timeout_s: float = 30.0  # whole body, from the end of the head: 408
    http_keep_alive_s: int = 5  # an idle keep-alive connection is closed after this
    http_max_head_bytes: int = 64 * 1024  # request line and headers: 431 beyond
    http_max_connections: int = 1000  # open connections/requests; 503 `overloaded` beyond

    # Credit decisioning. Unset cutoff: the model's suggested cutoff in production, and a
    # lenient 0.65 in sandbox so integrations see approvals (personas exercise the declines).
    risk_cutoff: float | None = None
    risk_model_path: str | None = None
    velocity_max_approvals_24h: int = 5
    bureau_budget_ms: int = 50

    # Late fees and delinquency (DOMAIN.md defaults).
    late_fee_grace_days: int = 10
    late_fee: int = 700
    late_fee_cap_bps: int = 2500

    # Workers.
    bus_poll_interval_s: float = 1.0  # a fallback: commits wake consumers (LISTEN/NOTIFY)
    scheduler_interval_s: float = 1.0
    scheduler_batch_size: int = 500  # due items one run of a job claims at a time
    # Collections: gateway charges in flight at once per worker, and how long a claimed
    # collection is left to the worker that claimed it before another one takes it over.
    collection_concurrency: int = 64
    collection_lease_s: float = 120.0

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            missing = [
                name
                for name in ("jwt_secret", "encryption_key", "database_url")
                if getattr(self, name) is None
            ]
            if missing or self.admin_token == "sandbox-admin-token":  # noqa: S105
                raise ValueError(f"production needs BNPL_ settings: {missing or ['admin_token']}")
        return self

    @property
    def effective_risk_cutoff(self) -> float | None:
        if self.risk_cutoff is not None:
            return self.risk_cutoff
        return 0.65 if self.sandbox else None

    @property
    def sandbox(self) -> bool:
        return self.env is Environment.SANDBOX

    @cached_property
    def jwt_key(self) -> bytes:
        if self.jwt_secret:
            return self.jwt_secret.encode()
        return hashlib.sha256(b"bnpl-jwt:" + self.admin_token.encode()).digest()

    @cached_property
    def aes_key(self) -> bytes:
        if self.encryption_key:
            key = base64.b64decode(self.encryption_key)
            if len(key) != 32:
                raise ValueError("BNPL_ENCRYPTION_KEY must be base64 of 32 bytes")
            return key
        return hashlib.sha256(b"bnpl-aes:" + self.admin_token.encode()).digest()

    embedded_pg_dir: Path | None = Field(default=None)

    @property
    def lake(self) -> str:
        return self.lake_url or str((self.data_dir / "lake").resolve())

    @property
    def pg_data_dir(self) -> Path:
        return self.embedded_pg_dir or (self.data_dir / "pgdata").resolve()
