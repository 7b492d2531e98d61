"""One merchant cannot hold up the others' webhooks: at most 16 endpoints per merchant (even
when many are created at once), and deliveries go out through a rolling window that caps each
merchant's sends in flight, so one merchant's slow receivers do not delay another's events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.collections.helpers import advance
from tests.support import Api, MerchantHandle, assert_problem, http_answer, http_server

MAX_ENDPOINTS = 16  # per merchant (issue 14)
PER_MERCHANT_IN_FLIGHT = 4  # a merchant's sends in flight at once, per sending process
SLOW_S = 3.0  # how long the slow merchant's receiver takes to answer
OK = http_answer(200, b"{}")


@dataclass
class SlowReceiver:
    """What a receiver that answers every request after `delay` seconds has seen."""

    delay: float
    arrived: list[float] = field(default_factory=list)  # monotonic times
    answered: int = 0
    in_flight: int = 0
    most_in_flight: int = 0


@asynccontextmanager
async def slow_receiver(delay: float) -> AsyncIterator[tuple[str, SlowReceiver]]:
    """A real HTTP server that answers 200 to each request `delay` seconds after it came."""
    seen = SlowReceiver(delay)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                seen.arrived.append(time.monotonic())
                seen.in_flight += 1
                seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
                try:
                    await asyncio.sleep(delay)
                finally:
                    seen.in_flight -= 1
                writer.write(OK)
                await writer.drain()
                seen.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()


async def create(api: Api, merchant: MerchantHandle, url: str, events: list[str]) -> httpx.Response:
    return await api.client.post(
        "/v1/webhook_endpoints", json={"url": url, "events": events}, headers=merchant.headers
    )


async def endpoint_ids(api: Api, merchant: MerchantHandle) -> list[str]:
    r = await api.client.get(
        "/v1/webhook_endpoints", params={"limit": 100}, headers=merchant.headers
    )
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["data"]]


async def checkout(api: Api, merchant: MerchantHandle) -> str:
    r = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=merchant.headers
    )
    assert r.status_code == 201, r.text
    checkout_id: str = r.json()["id"]
    return checkout_id


async def deliveries(api: Api, merchant: MerchantHandle, endpoint_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=merchant.headers
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def wait_for(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_a_merchant_has_at_most_16_endpoints(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    url = "http://127.0.0.1:9/hooks"  # nothing is sent: no settlement is paid here
    for i in range(MAX_ENDPOINTS):
        r = await create(api, shop, f"{url}/{i}", ["settlement.paid"])
        assert r.status_code == 201, r.text
    r = await create(api, shop, f"{url}/one-more", ["settlement.paid"])
    problem = assert_problem(r, 409, "endpoint_limit_reached")
    assert str(MAX_ENDPOINTS) in problem["detail"]
    assert len(await endpoint_ids(api, shop)) == MAX_ENDPOINTS

    # A deleted endpoint does not count; the cap is the merchant's, not the platform's.
    first = (await endpoint_ids(api, shop))[0]
    r = await api.client.delete(f"/v1/webhook_endpoints/{first}", headers=shop.headers)
    assert r.status_code == 204
    assert (await create(api, shop, f"{url}/again", ["settlement.paid"])).status_code == 201
    assert_problem(
        await create(api, shop, f"{url}/and-again", ["settlement.paid"]),
        409,
        "endpoint_limit_reached",
    )
    other = await api.active_merchant()
    assert (await create(api, other, url, ["settlement.paid"])).status_code == 201


async def test_simultaneous_creates_never_pass_the_cap(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    answers = await asyncio.gather(
        *(
            create(api, shop, f"http://127.0.0.1:9/hooks/{i}", ["settlement.paid"])
            for i in range(MAX_ENDPOINTS + 4)
        )
    )
    created = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code != 201]
    assert len(created) == MAX_ENDPOINTS, [r.status_code for r in answers]
    for r in refused:
        assert_problem(r, 409, "endpoint_limit_reached")
    assert sorted(await endpoint_ids(api, shop)) == sorted(r.json()["id"] for r in created)


async def test_slow_receivers_of_one_merchant_do_not_hold_up_another(quiet_api: Api) -> None:
    api = quiet_api
    slow_shop, other_shop = await api.active_merchant(), await api.active_merchant()
    async with (
        slow_receiver(SLOW_S) as (slow_url, slow),
        http_server(lambda _: OK) as (fast_url, fast),
    ):
        slow_hooks = []
        for i in range(MAX_ENDPOINTS):
            r = await create(api, slow_shop, f"{slow_url}/{i}", ["checkout.created"])
            assert r.status_code == 201, r.text
            slow_hooks.append(r.json()["id"])
        r = await create(api, other_shop, fast_url, ["checkout.created"])
        assert r.status_code == 201, r.text
        fast_hook = r.json()["id"]

        # One event of the slow merchant: 16 deliveries of SLOW_S seconds each. The clock
        # answers once every one of them is sent and recorded.
        await checkout(api, slow_shop)
        moving = asyncio.create_task(advance(api, "PT1S"))
        try:
            assert await wait_for(lambda: bool(slow.arrived), 10), "nothing was sent"
            # While the slow merchant's sends are in flight, another merchant's event happens.
            asked = time.monotonic()
            await checkout(api, other_shop)
            arrived = await wait_for(lambda: bool(fast), SLOW_S * 3)
            waited = time.monotonic() - asked
            answered_before = slow.answered
        finally:
            await moving
        assert arrived, "the other merchant's event was not delivered"
        # It did not wait for the slow receivers (they answer after SLOW_S seconds).
        assert answered_before == 0, (waited, answered_before)
        assert waited < SLOW_S / 2, waited
        # The slow merchant never had more than its share of the sends in flight, and all of
        # its deliveries were sent and recorded before the clock answered.
        assert slow.most_in_flight <= PER_MERCHANT_IN_FLIGHT, slow.most_in_flight
        assert slow.answered == len(slow.arrived) == MAX_ENDPOINTS
    for hook in slow_hooks:
        assert [
            (d["attempt"], d["status_code"]) for d in await deliveries(api, slow_shop, hook)
        ] == [(1, 200)]
    assert [d["status_code"] for d in await deliveries(api, other_shop, fast_hook)] == [200]
