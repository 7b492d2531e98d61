"""Start and stop the platform's engines for one process, in any of its roles."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from bnpl import contexts
from bnpl.audit import Sealer
from bnpl.config import Settings
from bnpl.gateway import RateLimiter
from bnpl.gateway.idempotency import IdempotencyStore
from bnpl.kit.clock import Clock
from bnpl.kit.crypto import field_cipher
from bnpl.kit.db import Database
from bnpl.kit.embedded import start_embedded_postgres
from bnpl.kit.migrate import migrate
from bnpl.messaging import PostgresBus
from bnpl.providers.http import build_providers
from bnpl.providers.sandbox import create_sandbox_app
from bnpl.providers.sandbox.smtp import smtp_url, start_smtp_sink
from bnpl.runtime import Runtime
from bnpl.scheduler import Scheduler

log = logging.getLogger(__name__)

# An API process reads the sandbox clock in every state-changing request (and before the
# few reads that use business time), so its background refresh is only a backstop: every
# ten scheduler intervals (10 s by default).
API_CLOCK_FOLLOW_INTERVALS = 10


@dataclass(frozen=True)
class Roles:
    workers: bool = True  # event consumers, scheduler, audit sealer
    migrate: bool = True
    simulators: bool = True  # in-process sandbox providers when no BNPL_PROVIDERS_URL


def database_url(settings: Settings) -> str:
    return settings.database_url or start_embedded_postgres(settings.pg_data_dir)


class _InnerServer(uvicorn.Server):
    """A server inside a process that already handles signals (the API or the tests)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_in_background(
    app: object, host: str, port: int, **options: Any
) -> tuple[uvicorn.Server, str]:
    """Run an ASGI app on its own uvicorn server inside this event loop; returns its URL.
    `options` are more uvicorn settings (the API's: `gateway.server.server_options`)."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        **{"proxy_headers": False, **options},  # the sandbox providers: no proxy in front
    )
    server = _InnerServer(config)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    sock = server.servers[0].sockets[0].getsockname()
    server.__dict__["_task"] = task
    return server, f"http://{sock[0]}:{sock[1]}"


async def stop_server(server: uvicorn.Server) -> None:
    server.should_exit = True
    task: asyncio.Task[None] = server.__dict__["_task"]
    await task


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


@asynccontextmanager
async def start_platform(settings: Settings, roles: Roles = Roles()) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        db = Database(
            database_url(settings), min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        await db.open()
        stack.push_async_callback(db.close)
        if roles.migrate:
            async with db.connection() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("migrations applied", extra={"applied": applied})
        clock = Clock()
        async with db.connection() as conn:
            await clock.refresh(conn)

        providers_url = settings.providers_url
        if providers_url is None:
            if not roles.simulators:
                raise RuntimeError("set BNPL_PROVIDERS_URL (or run the sandbox simulators)")
            sandbox_app = create_sandbox_app(db, latency_ms=settings.sandbox_latency_ms)
            server, providers_url = await serve_in_background(
                sandbox_app, settings.sandbox_host, settings.sandbox_port
            )
            stack.push_async_callback(stop_server, server)
            log.info("sandbox providers running", extra={"url": providers_url})
        providers = build_providers(providers_url, timeout_s=settings.provider_timeout_s)
        stack.push_async_callback(providers.aclose)
        if settings.smtp_url is None and roles.simulators and roles.workers:
            # No SMTP relay named: the workers (which send mail) send it to the sandbox's own
            # SMTP server.
            sink = await start_smtp_sink(db, settings.sandbox_host)
            stack.push_async_callback(_close_server, sink)
            settings = settings.model_copy(update={"smtp_url": smtp_url(sink)})
            log.info("sandbox SMTP server running", extra={"url": settings.smtp_url})

        bus = _bus(db, settings)
        scheduler = Scheduler(
            db,
            clock,
            bus,
            interval=settings.scheduler_interval_s,
            batch_size=settings.scheduler_batch_size,
        )
        rt = Runtime(
            settings=settings,
            db=db,
            clock=clock,
            bus=bus,
            scheduler=scheduler,
            limiter=RateLimiter(settings.redis_url),
            providers=providers.providers,
        )
        contexts.register_all(rt)
        for close in rt.closers:
            stack.push_async_callback(close)

        if roles.workers:
            sealer = Sealer(db)
            bus.on_wake(scheduler.nudge)
            bus.on_wake(sealer.nudge)
            await bus.start()
            stack.push_async_callback(bus.stop)
            await scheduler.start()
            stack.push_async_callback(scheduler.stop)
            await sealer.start()
            stack.push_async_callback(sealer.stop)
            keys = IdempotencyStore(
                db,
                settings.idempotency_ttl_s,
                settings.idempotency_lock_timeout_s,
                field_cipher(settings.aes_key),
            )
            purger = asyncio.create_task(_purge_expired_keys(keys), name="idempotency-purge")
            stack.push_async_callback(_cancel, purger)
        else:
            # Consumers run in the workers: tell them when this process commits events.
            await bus.start_notifier()
            stack.push_async_callback(bus.stop)
            # The scheduler loop refreshes the clock in a worker; an API-only process must
            # still follow the sandbox clock when another process moves it.
            refresher = asyncio.create_task(
                _follow_clock(
                    db, clock, API_CLOCK_FOLLOW_INTERVALS * settings.scheduler_interval_s
                ),
                name="clock-refresh",
            )
            stack.push_async_callback(_cancel, refresher)
        yield rt


def _bus(db: Database, settings: Settings) -> PostgresBus:
    """The bus backend: Kafka when `BNPL_KAFKA_BOOTSTRAP` is set, else PostgreSQL alone."""
    if settings.kafka_bootstrap is None:
        return PostgresBus(db, poll_interval=settings.bus_poll_interval_s)
    from bnpl.messaging.kafka import KafkaBus, KafkaOptions

    options = KafkaOptions(
        bootstrap=settings.kafka_bootstrap,
        prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        retry_attempts=settings.kafka_retry_attempts,
        retry_delay_s=settings.kafka_retry_delay_s,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    return KafkaBus(db, poll_interval=settings.bus_poll_interval_s, options=options)


async def _follow_clock(db: Database, clock: Clock, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            async with db.connection() as conn:
                await clock.refresh(conn)
        except Exception:
            log.warning("clock refresh failed", exc_info=True)


async def _purge_expired_keys(keys: IdempotencyStore, interval: float = 300.0) -> None:
    """Idempotency keys are kept 24 hours; nothing else ever deletes them."""
    while True:
        try:
            purged = await keys.purge_expired()
            if purged:
                log.info("expired idempotency keys purged", extra={"purged": purged})
        except Exception:
            log.warning("purging idempotency keys failed", exc_info=True)
        await asyncio.sleep(interval)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
