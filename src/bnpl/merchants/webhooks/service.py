"""Webhooks: endpoints, the queue every public event of a merchant goes into, the sender.

1. **Queueing** (`merchants.queue_webhooks`, a consumer of every public event): an event
   that belongs to a merchant becomes one job per endpoint of that merchant subscribed to
   its type, in the same transaction as the consumer's inbox row (so once per event).
2. **Sending** (`DeliverWebhooks`, due work over the jobs' next attempt times): due jobs at
   the head of their chain (endpoint and aggregate: the events of one checkout go out in
   order) are leased and committed, then POSTed outside any transaction, signed as Standard
   Webhooks says, with a 10 s timeout and no redirects followed; each attempt is recorded.
   A 2xx answer delivers the job; anything else is tried again on `domain.RETRY_AFTER`'s
   schedule (over three days), then the job has `failed`. A url that resolves to a
   non-public address is never called (the attempt fails with the reason).
3. `POST /v1/events/{id}/redeliver` queues the event again for its endpoints.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import asyncpg
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError

from bnpl.kit.clock import wall_now
from bnpl.kit.crypto import field_cipher
from bnpl.kit.db import Database
from bnpl.kit.errors import not_found, unprocessable, validation_error
from bnpl.kit.ids import new_id
from bnpl.merchants.webhooks import domain
from bnpl.merchants.webhooks import repository as repo
from bnpl.merchants.webhooks.repository import Delivery, Endpoint, Job
from bnpl.messaging import PUBLIC_TYPES, Event, Handler, public_event

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

LEASE: Final = timedelta(seconds=60)  # longer than an attempt can take (10 s)
IN_FLIGHT: Final = 32
RESOLVE_TIMEOUT_S: Final = 2.0
SUBSCRIBABLE: Final = PUBLIC_TYPES | {domain.WILDCARD}


async def _resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to ([] if it does not resolve in time)."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError):
        return []
    return sorted({str(info[4][0]) for info in found})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _builder() -> ClientBuilder:
    return (
        ClientBuilder()
        .timeout(timedelta(seconds=domain.TIMEOUT_S))
        .connect_timeout(timedelta(seconds=min(domain.TIMEOUT_S, 5.0)))
        .follow_redirects(False)
        .error_for_status(False)
        .user_agent("bnpl-webhooks/1")
    )


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


# --------------------------------------------------------------------------- endpoints


async def create_endpoint(
    conn: asyncpg.Connection,
    merchant_id: str,
    *,
    url: str,
    events: list[str],
    sandbox: bool,
    aes_key: bytes,
    at: datetime,
) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret (shown once)."""
    unknown = sorted(set(events) - SUBSCRIBABLE)
    if unknown:
        raise validation_error(f"unknown event types: {', '.join(unknown)}", "events")
    try:
        parts = domain.check_url(url, sandbox=sandbox)
        host = parts.hostname or ""
        # A name that does not resolve now is accepted (it is checked again before each
        # delivery); one that resolves to a non-public address is refused.
        blocked = domain.blocked_address(host, await _resolve(host, _port(url)), sandbox=sandbox)
        if blocked is not None:
            raise domain.InvalidWebhookUrl(f"the url resolves to a non-public address ({blocked})")
    except domain.InvalidWebhookUrl as exc:
        raise unprocessable("invalid_webhook_url", str(exc), "url") from exc
    endpoint_id = new_id("whe")
    secret = domain.new_secret()
    endpoint = Endpoint(
        endpoint_id,
        merchant_id,
        url,
        tuple(dict.fromkeys(events)),
        field_cipher(aes_key).encrypt(secret, aad=endpoint_id),
        at,
    )
    await repo.insert_endpoint(conn, endpoint)
    return endpoint, secret


async def get_endpoint(conn: asyncpg.Connection, endpoint_id: str, merchant_id: str) -> Endpoint:
    found = await repo.get_endpoint(conn, endpoint_id, merchant_id)
    if found is None:
        raise not_found("webhook endpoint")
    return found


async def list_endpoints(
    conn: asyncpg.Connection, merchant_id: str, *, after: str | None, limit: int
) -> list[Endpoint]:
    return await repo.list_endpoints(conn, merchant_id, after=after, limit=limit)


async def delete_endpoint(
    conn: asyncpg.Connection, endpoint_id: str, merchant_id: str, at: datetime
) -> None:
    await get_endpoint(conn, endpoint_id, merchant_id)
    await repo.delete_endpoint(conn, endpoint_id, at)


async def list_deliveries(
    conn: asyncpg.Connection,
    endpoint_id: str,
    merchant_id: str,
    *,
    after: str | None,
    limit: int,
) -> list[Delivery]:
    await get_endpoint(conn, endpoint_id, merchant_id)
    return await repo.list_deliveries(conn, endpoint_id, after=after, limit=limit)


# --------------------------------------------------------------------------- queueing


async def _queue(conn: asyncpg.Connection, event: Event, *, redelivery: bool, at: datetime) -> int:
    if event.merchant_id is None:
        return 0
    endpoints = await repo.subscribed_endpoints(conn, event.merchant_id, event.type)
    if endpoints:
        await repo.insert_jobs(
            conn,
            [e.id for e in endpoints],
            event_id=event.event_id,
            event_type=event.type,
            aggregate_id=event.aggregate_id,
            body=domain.body(event.event_id, event.type, event.occurred_at, event.data),
            redelivery=redelivery,
            at=at,
        )
    return len(endpoints)


def queue_handler(rt: Runtime) -> Handler:
    """`merchants.queue_webhooks`: a merchant's public event, queued for its endpoints."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        await _queue(conn, event, redelivery=False, at=rt.clock.now())

    return handle


async def redeliver(conn: asyncpg.Connection, merchant_id: str, event_id: str, at: datetime) -> int:
    """Queue the merchant's event again for its endpoints; how many."""
    event = await public_event(conn, event_id)
    if event is None or event.merchant_id != merchant_id:
        raise not_found("event")
    return await _queue(conn, event, redelivery=True, at=at)


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None
    error: str | None


@dataclass
class DeliverWebhooks:
    """`merchants.deliver_webhooks`: send the due jobs, record each attempt."""

    rt: Runtime
    name: str = "merchants.deliver_webhooks"
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """The pooled client, for urls whose host is an IP address (nothing to resolve)."""
        if self._client is None:  # created on first use, inside the running loop
            self._client = _builder().build()
            self.rt.closers.append(self.aclose)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def next_due_at(self, db: Database) -> datetime | None:
        async with db.connection() as conn:
            return await repo.next_due(conn)

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        done = 0
        # Delivering a job can free the next of its chain: go on while there is work.
        while done < limit:
            async with db.transaction() as conn:
                jobs = await repo.claim_jobs(conn, now, now + LEASE, min(IN_FLIGHT, limit - done))
            if not jobs:
                break
            answers = await asyncio.gather(*(self._send(job) for job in jobs))
            for job, answer in zip(jobs, answers, strict=True):
                await self._record(db, job, answer, now)
            done += len(jobs)
        return done

    async def _send(self, job: Job) -> Answer:
        parts = urlsplit(job.url)
        host = parts.hostname or ""
        sandbox = self.rt.settings.sandbox
        resolved = await _resolve(host, _port(job.url))
        if not resolved:
            return Answer(None, f"could not resolve {host}")
        blocked = domain.blocked_address(host, resolved, sandbox=sandbox)
        if blocked is not None:
            return Answer(None, f"refused: {host} resolves to a non-public address ({blocked})")
        secret = field_cipher(self.rt.settings.aes_key).decrypt(
            job.secret_ciphertext, aad=job.endpoint_id
        )
        signed = domain.headers(secret, job.event_id, int(wall_now().timestamp()), job.body)
        # A name is pinned to the address just checked, so that it cannot resolve elsewhere
        # (a private address) between the check and the connection.
        pinned = None if _is_ip(host) else _builder().resolve(host, resolved[0], _port(job.url))
        client = self.client if pinned is None else pinned.build()
        call = client.request("POST", job.url).body_bytes(job.body.encode())
        for name, value in signed.items():
            call = call.header(name, value)
        try:
            response = await call.build().send()
            await response.bytes()
        except PyreqwestError as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return Answer(None, reason)
        finally:
            if pinned is not None:
                await client.close()
        if domain.delivered(response.status):
            return Answer(response.status, None)
        return Answer(response.status, f"answered {response.status}")

    async def _record(self, db: Database, job: Job, answer: Answer, now: datetime) -> None:
        ok = domain.delivered(answer.status_code)
        retry_at = None if ok else domain.next_attempt(job.attempts + 1, now)
        try:
            async with db.transaction() as conn:
                await repo.record_attempt(
                    conn,
                    job,
                    delivery_id=new_id("whd"),
                    status_code=answer.status_code,
                    error=answer.error,
                    next_attempt_at=retry_at,
                    delivered=ok,
                    at=now,
                )
        except Exception:
            # The lease runs out and the job is sent again (a receiver dedupes by webhook-id).
            log.exception("recording a webhook attempt failed", extra={"job": job.id})
