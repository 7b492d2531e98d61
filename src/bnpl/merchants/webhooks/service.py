"""Webhooks: endpoints, the queue every public event of a merchant goes into, the sender.

1. **Queueing** (`merchants.queue_webhooks`, a consumer of every public event): an event
   that belongs to a merchant becomes one job per endpoint of that merchant subscribed to
   its type, in the same transaction as the consumer's inbox row (so once per event).
2. **Sending** (`DeliverWebhooks`, due work over the jobs' next attempt times): due jobs at
   the head of their chain (endpoint and aggregate: the events of one checkout go out in
   order) are leased and committed, then POSTed outside any transaction, signed as Standard
   Webhooks says, with a 10 s timeout and no redirects followed; each attempt is recorded.
   A 2xx answer delivers the job; anything else is tried again on `domain.RETRY_AFTER`'s
   schedule (over three days), then the job has `failed`. A url whose host does not resolve,
   or resolves to a non-public address, is never called (the attempt fails, saying only
   that the host is not allowed; the operators' log says why).
   Sends go out through a rolling window, not in batches: up to `IN_FLIGHT` at once, at most
   `IN_FLIGHT_PER_MERCHANT` of them one merchant's, each recorded as soon as its answer
   comes, and due jobs claimed fairly across merchants as slots free up (and every
   `CLAIM_EVERY_S` while sends are in flight), so one merchant's slow receivers cannot hold
   up another merchant's events.
3. `POST /v1/events/{id}/redeliver` queues the event again for its endpoints.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Sequence
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
from bnpl.kit.errors import conflict, not_found, unprocessable, validation_error
from bnpl.kit.ids import new_id
from bnpl.merchants.webhooks import domain
from bnpl.merchants.webhooks import repository as repo
from bnpl.merchants.webhooks.repository import Delivery, Endpoint, Job
from bnpl.messaging import PUBLIC_TYPES, BatchHandler, Event, public_event

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

log = logging.getLogger(__name__)

LEASE: Final = timedelta(seconds=60)  # longer than an attempt can take (10 s)
IN_FLIGHT: Final = 32  # sends one process has in flight at once
IN_FLIGHT_PER_MERCHANT: Final = 4  # of which one merchant's, at most
CLAIM_EVERY_S: Final = 0.2  # while sends are in flight, how often newly due jobs are claimed
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
    """A new endpoint and its signing secret (shown once); 409 `endpoint_limit_reached` when
    the merchant already has `domain.MAX_ENDPOINTS`."""
    unknown = sorted(set(events) - SUBSCRIBABLE)
    if unknown:
        raise validation_error(f"unknown event types: {', '.join(unknown)}", "events")
    try:
        parts = domain.check_url(url, sandbox=sandbox)
        host = parts.hostname or ""
        # Only a host that resolves, to public addresses only, is accepted; a name that does
        # not resolve is refused like one that resolves to a private address, with the same
        # words, so that the answer tells nothing of the platform's internal names.
        refusal = domain.host_refusal(host, await _resolve(host, _port(url)), sandbox=sandbox)
        if refusal is not None:
            log.info(
                "webhook url refused",
                extra={"merchant": merchant_id, "host": host, "reason": refusal},
            )
            raise domain.InvalidWebhookUrl(domain.HOST_NOT_ALLOWED)
    except domain.InvalidWebhookUrl as exc:
        raise unprocessable("invalid_webhook_url", str(exc), "url") from exc
    # Counted under a lock of this merchant's endpoints: simultaneous creates queue here.
    if await repo.lock_and_count_endpoints(conn, merchant_id) >= domain.MAX_ENDPOINTS:
        raise conflict(
            "endpoint_limit_reached",
            f"A merchant has at most {domain.MAX_ENDPOINTS} webhook endpoints; "
            "delete one to add another.",
        )
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
    endpoints = await repo.live_endpoints(conn, [event.merchant_id])
    subscribed = _subscribed(endpoints.get(event.merchant_id, []), event.type)
    if subscribed:
        await _insert_jobs(conn, event, subscribed, redelivery=redelivery, at=at)
    return len(subscribed)


def _subscribed(endpoints: Sequence[Endpoint], event_type: str) -> list[str]:
    """The ids of the endpoints that take `event_type` (by name, or all with `*`)."""
    return [e.id for e in endpoints if event_type in e.events or "*" in e.events]


async def _insert_jobs(
    conn: asyncpg.Connection,
    event: Event,
    endpoint_ids: list[str],
    *,
    redelivery: bool,
    at: datetime,
) -> None:
    await repo.insert_jobs(
        conn,
        endpoint_ids,
        event_id=event.event_id,
        event_type=event.type,
        aggregate_id=event.aggregate_id,
        body=domain.body(event.event_id, event.type, event.occurred_at, event.data),
        redelivery=redelivery,
        at=at,
    )


def queue_handler(rt: Runtime) -> BatchHandler:
    """`merchants.queue_webhooks`: merchants' public events, each queued for its merchant's
    endpoints that subscribe to it. The endpoints of a batch's merchants are read at once."""

    async def handle(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        merchants = {e.merchant_id for e in events if e.merchant_id is not None}
        if not merchants:
            return
        endpoints = await repo.live_endpoints(conn, sorted(merchants))
        at = rt.clock.now()
        for event in events:
            subscribed = _subscribed(endpoints.get(event.merchant_id or "", []), event.type)
            if subscribed:
                await _insert_jobs(conn, event, subscribed, redelivery=False, at=at)

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
        """Send up to `limit` due jobs; return once every one claimed is sent and recorded.

        A rolling window, not batches: up to `IN_FLIGHT` sends at once (of which at most
        `IN_FLIGHT_PER_MERCHANT` one merchant's), each recorded as soon as its answer comes,
        and more due jobs claimed, fairly across merchants, whenever a slot frees up and
        every `CLAIM_EVERY_S` while sends are in flight, so a job that falls due meanwhile
        (another merchant's new event) is not held up behind slow receivers. Business time
        runs on from `now` as the run goes on; a job is recorded at the time it was claimed.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        flying: dict[asyncio.Task[None], str] = {}  # send -> its merchant
        claimed = 0
        try:
            while True:
                room = min(IN_FLIGHT - len(flying), limit - claimed)
                if room > 0:
                    at = now + timedelta(seconds=loop.time() - started)
                    async with db.transaction() as conn:
                        jobs = await repo.claim_jobs(
                            conn,
                            at,
                            at + LEASE,
                            room,
                            busy=Counter(flying.values()),
                            per_merchant=IN_FLIGHT_PER_MERCHANT,
                        )
                    for job in jobs:
                        flying[asyncio.create_task(self._deliver(db, job, at))] = job.merchant_id
                    claimed += len(jobs)
                if not flying:
                    break  # nothing in flight and nothing (more) to claim
                done, _ = await asyncio.wait(
                    flying, timeout=CLAIM_EVERY_S, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    del flying[task]
        finally:
            # Cancelled or failed: what is still in flight is left to its lease (sent again).
            for task in flying:
                task.cancel()
        return claimed

    async def _deliver(self, db: Database, job: Job, at: datetime) -> None:
        try:
            answer = await self._send(job)
        except Exception:
            # Left to its lease: sent again once it runs out.
            log.exception("sending a webhook failed", extra={"job": job.id})
            return
        await self._record(db, job, answer, at)

    async def _send(self, job: Job) -> Answer:
        parts = urlsplit(job.url)
        host = parts.hostname or ""
        sandbox = self.rt.settings.sandbox
        resolved = await _resolve(host, _port(job.url))
        refusal = domain.host_refusal(host, resolved, sandbox=sandbox)
        if refusal is not None:
            # The merchant reads the delivery's error: the same words whatever the reason.
            log.warning(
                "webhook not sent: host refused",
                extra={"job": job.id, "endpoint": job.endpoint_id, "host": host, "reason": refusal},
            )
            return Answer(None, f"not sent: {domain.HOST_NOT_ALLOWED}")
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
