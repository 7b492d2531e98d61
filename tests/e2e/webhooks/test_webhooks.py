"""Webhooks over HTTP (API.md "Webhooks"): a real local receiver gets signed deliveries that
the Standard Webhooks reference library verifies, in order per checkout, retried on failure
with backoff over more than three days, and redelivered on request."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from bnpl.merchants.webhooks import repository as jobs
from bnpl.merchants.webhooks import service as webhooks_service
from tests.e2e.collections.helpers import advance, purchase
from tests.support import Api, MerchantHandle, assert_problem, http_answer, http_server

OK = http_answer(200, b"{}")
DOWN = http_answer(503, b"down")


def parse(raw: bytes) -> tuple[str, dict[str, str], str]:
    """A received request (as `http_server` keeps it): path, headers, body."""
    head, _, content = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    path = lines[0].split(" ")[2]  # "<connection> POST <path> HTTP/1.1"
    fields = dict(line.split(":", 1) for line in lines[1:])
    return path, {k.strip().lower(): v.strip() for k, v in fields.items()}, content.decode()


def received(seen: list[bytes], secret: str) -> list[dict[str, Any]]:
    """Every delivery the receiver got, verified with the reference library."""
    out = []
    for raw in seen:
        _, head, content = parse(raw)
        event = Webhook(secret).verify(content, head)
        assert head["webhook-id"] == event["id"]
        assert head["content-type"] == "application/json"
        out.append(event)
    return out


async def endpoint(
    api: Api, merchant: MerchantHandle, url: str, events: list[str]
) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/webhook_endpoints", json={"url": url, "events": events}, headers=merchant.headers
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def deliveries(api: Api, merchant: MerchantHandle, endpoint_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
        params={"limit": 100},
        headers=merchant.headers,
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_events_arrive_signed_once_and_in_order(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    async with http_server(lambda _: OK) as (url, seen):
        hook = await endpoint(
            api,
            shop,
            url + "/hooks",
            ["checkout.created", "checkout.captured", "checkout.authorized"],
        )
        assert hook["id"].startswith("whe_") and hook["secret"].startswith("whsec_")
        assert hook["events"] == ["checkout.created", "checkout.captured", "checkout.authorized"]
        sale = await purchase(api, merchant=shop, amount=20_000)
        await advance(api, "PT1S")
        got = received(seen, hook["secret"])
    assert [e["type"] for e in got] == [
        "checkout.created",
        "checkout.authorized",
        "checkout.captured",
    ]
    assert all(e["data"]["id"] == sale["checkout_id"] for e in got)
    assert all(parse(raw)[0] == "/hooks" for raw in seen)
    for event in got:  # the body is the event as the API shows it
        r = await api.client.get(f"/v1/events/{event['id']}", headers=shop.headers)
        assert r.json() == event
    rows = await deliveries(api, shop, hook["id"])
    assert [(d["event_id"], d["attempt"], d["status_code"], d["error"]) for d in rows] == [
        (e["id"], 1, 200, None) for e in got
    ]
    assert all(d["id"].startswith("whd_") and d["event_type"] for d in rows)
    # The secret is shown once: never in the list.
    r = await api.client.get("/v1/webhook_endpoints", headers=shop.headers)
    assert [e["id"] for e in r.json()["data"]] == [hook["id"]]
    assert hook["secret"] not in r.text


async def test_a_failing_endpoint_is_retried_and_later_events_wait_their_turn(
    quiet_api: Api,
) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    tries = {"checkout.created": 0}

    def flaky(raw: bytes) -> bytes:  # the checkout's first event fails twice
        kind = json.loads(parse(raw)[2])["type"]
        if kind not in tries:
            return OK
        tries[kind] += 1
        return DOWN if tries[kind] <= 2 else OK

    async with http_server(flaky) as (url, seen):
        hook = await endpoint(api, shop, url, ["*"])
        await purchase(api, merchant=shop, amount=20_000)
        await advance(api, "PT1S")
        # The checkout's first event failed, so its next events wait; other aggregates' (the
        # plan's) go on.
        early = [e["type"] for e in received(seen, hook["secret"])]
        assert [t for t in early if t.startswith("checkout.")] == ["checkout.created"]
        assert any(t.startswith("plan.") for t in early)
        await advance(api, "PT10M")
        got = received(seen, hook["secret"])
    checkout_events = [e for e in got if e["type"].startswith("checkout.")]
    assert [e["type"] for e in checkout_events] == [
        "checkout.created",
        "checkout.created",
        "checkout.created",
        "checkout.authorized",
        "checkout.captured",
    ]
    assert len({e["id"] for e in checkout_events[:3]}) == 1  # one event, three attempts
    rows = await deliveries(api, shop, hook["id"])
    first = [d for d in rows if d["event_id"] == checkout_events[0]["id"]]
    assert [(d["attempt"], d["status_code"]) for d in first] == [(1, 503), (2, 503), (3, 200)]
    assert first[0]["error"] == "answered 503" and first[2]["error"] is None
    gaps = [at(b["created_at"]) - at(a["created_at"]) for a, b in itertools.pairwise(first)]
    assert timedelta(seconds=5) <= gaps[0] < timedelta(seconds=6)
    assert timedelta(minutes=5) <= gaps[1] < timedelta(minutes=5, seconds=1)
    assert all(d["attempt"] == 1 for d in rows if d["event_id"] != checkout_events[0]["id"])


async def test_an_endpoint_that_never_answers_2xx_is_tried_for_three_days(
    quiet_api: Api,
) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    async with http_server(lambda _: DOWN) as (url, seen):
        hook = await endpoint(api, shop, url, ["checkout.created"])
        r = await api.client.post(
            "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
        )
        assert r.status_code == 201
        await advance(api, "P4D")
        assert len(seen) == 10
        await advance(api, "P4D")
        assert len(seen) == 10  # given up
    rows = await deliveries(api, shop, hook["id"])
    assert [d["attempt"] for d in rows] == list(range(1, 11))
    assert all(d["status_code"] == 503 for d in rows)
    assert at(rows[-1]["created_at"]) - at(rows[0]["created_at"]) > timedelta(days=3)


async def test_a_named_host_is_delivered_to_at_the_address_checked(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    async with http_server(lambda _: OK) as (url, seen):
        named = url.replace("127.0.0.1", "localhost")  # sandbox mode lets localhost through
        hook = await endpoint(api, shop, named + "/in", ["checkout.created"])
        r = await api.client.post(
            "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
        )
        await advance(api, "PT1S")
        [event] = received(seen, hook["secret"])
    assert event["data"]["id"] == r.json()["id"]
    assert parse(seen[0])[1]["host"] == named.removeprefix("http://")
    [row] = await deliveries(api, shop, hook["id"])
    assert row["status_code"] == 200


async def test_an_unreachable_endpoint_records_no_status_code(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    async with http_server(lambda _: OK) as (url, _seen):
        pass  # the server is gone: nothing listens on its port any more
    hook = await endpoint(api, shop, url, ["checkout.created"])
    r = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
    )
    assert r.status_code == 201
    await advance(api, "PT1S")
    [row] = await deliveries(api, shop, hook["id"])
    assert row["status_code"] is None and row["error"]
    # Its retries would fall due during the next tests (which claim jobs by hand).
    r = await api.client.delete(f"/v1/webhook_endpoints/{hook['id']}", headers=shop.headers)
    assert r.status_code == 204


async def test_redelivery_and_deletion(quiet_api: Api) -> None:
    api = quiet_api
    shop, other = await api.active_merchant(), await api.active_merchant()
    async with http_server(lambda _: OK) as (url, seen):
        hook = await endpoint(api, shop, url, ["checkout.created"])
        r = await api.client.post(
            "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
        )
        checkout_id = r.json()["id"]
        await advance(api, "PT1S")
        [event] = received(seen, hook["secret"])
        assert event["data"]["id"] == checkout_id

        r = await api.client.post(f"/v1/events/{event['id']}/redeliver", headers=shop.headers)
        assert r.status_code == 202, r.text
        assert r.json() == {"event_id": event["id"], "endpoints": 1}
        assert_problem(
            await api.client.post(f"/v1/events/{event['id']}/redeliver", headers=other.headers),
            404,
            "not_found",
        )
        await advance(api, "PT1S")
        again = received(seen, hook["secret"])
        assert [e["id"] for e in again] == [event["id"], event["id"]]

        for path in (
            f"/v1/webhook_endpoints/{hook['id']}",
            f"/v1/webhook_endpoints/{hook['id']}/deliveries",
        ):
            assert_problem(await api.client.get(path, headers=other.headers), 404, "not_found")
            assert_problem(await api.client.get(path, headers=api.operator), 403, "forbidden")
        assert_problem(
            await api.client.delete(f"/v1/webhook_endpoints/{hook['id']}", headers=other.headers),
            404,
            "not_found",
        )
        r = await api.client.delete(f"/v1/webhook_endpoints/{hook['id']}", headers=shop.headers)
        assert r.status_code == 204
        await api.client.post(
            "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
        )
        await advance(api, "PT1S")
        assert len(seen) == 2  # a deleted endpoint receives nothing more
    r = await api.client.get("/v1/webhook_endpoints", headers=shop.headers)
    assert r.json()["data"] == []


async def test_urls_and_event_types_are_checked(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    for url in (
        "http://shop.example/hooks",
        "https://10.0.0.8/hooks",
        "https://169.254.169.254/latest",
        "https://[::1]/hooks",
        "https://192.168.1.1:8443/x",
        "https://[::7f00:1]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[2002:7f00:1::1]/",
        "https://[fec0::1]/",
        "not a url",
    ):
        r = await api.client.post(
            "/v1/webhook_endpoints", json={"url": url, "events": ["*"]}, headers=shop.headers
        )
        assert_problem(r, 422, "invalid_webhook_url")
    for events in ([], ["checkout.exploded"], "checkout.created"):
        r = await api.client.post(
            "/v1/webhook_endpoints",
            json={"url": "https://shop.example/hooks", "events": events},
            headers=shop.headers,
        )
        assert r.status_code in (400, 422), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    # A name that does not resolve is refused exactly as one that resolves to a private
    # address, and the answer never shows an address (no oracle for internal names).
    refusals = []
    for url in ("https://hooks.shop.invalid/x", "https://10.0.0.5/x", "https://[::1]/x"):
        r = await api.client.post(
            "/v1/webhook_endpoints", json={"url": url, "events": ["*"]}, headers=shop.headers
        )
        problem = assert_problem(r, 422, "invalid_webhook_url")
        assert "10.0.0.5" not in r.text and "::1" not in r.text, problem
        refusals.append((problem["detail"], problem["errors"]))
    assert refusals[0] == refusals[1] == refusals[2]
    assert_problem(
        await api.client.post(
            "/v1/webhook_endpoints",
            json={"url": "https://shop.example/x", "events": ["*"]},
            headers=api.operator,
        ),
        403,
        "forbidden",
    )


async def test_a_delivery_whose_worker_died_is_sent_when_its_lease_runs_out(
    quiet_api: Api,
) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    async with http_server(lambda _: OK) as (url, seen):
        hook = await endpoint(api, shop, url, ["checkout.created"])
        await api.client.post(
            "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
        )
        await api.settle()  # queued, not sent: the scheduler does not tick by itself here
        now = api.rt.clock.now()
        async with api.rt.db.transaction() as conn:  # a worker claims it, then dies
            [job] = await jobs.claim_jobs(conn, now, now + timedelta(seconds=60), 10)
        await advance(api, "PT30S")
        assert seen == []  # still leased
        await advance(api, "PT1M")
        [event] = received(seen, hook["secret"])
    assert event["id"] == job.event_id
    [row] = await deliveries(api, shop, hook["id"])
    assert (row["attempt"], row["status_code"]) == (1, 200)


async def test_what_a_merchant_sees_never_tells_what_a_name_resolves_to(
    quiet_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint's name that later resolves to a private address, or no longer resolves,
    is not called; both attempts read the same to the merchant, with no address in them
    (the resolver is the one piece replaced: the test machine has no public DNS)."""
    api = quiet_api
    shop = await api.active_merchant()
    answers = {"hooks.shop.example": ["93.184.215.14"], "gone.shop.example": ["93.184.215.14"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers.get(host, [])

    monkeypatch.setattr(webhooks_service, "_resolve", resolve)
    # A private answer at creation reads the same as no answer at all.
    refused = []
    for host, addresses in (("internal.shop.example", ["10.0.0.5"]), ("nx.shop.example", [])):
        answers[host] = addresses
        r = await api.client.post(
            "/v1/webhook_endpoints",
            json={"url": f"https://{host}/in", "events": ["*"]},
            headers=shop.headers,
        )
        problem = assert_problem(r, 422, "invalid_webhook_url")
        assert "10.0.0.5" not in r.text
        refused.append((problem["detail"], problem["errors"]))
    assert refused[0] == refused[1]

    rebound = await endpoint(api, shop, "https://hooks.shop.example/in", ["checkout.created"])
    gone = await endpoint(api, shop, "https://gone.shop.example/in", ["checkout.created"])
    answers["hooks.shop.example"] = ["10.0.0.5"]  # rebound to a private address
    answers["gone.shop.example"] = []  # no longer resolves
    r = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
    )
    assert r.status_code == 201
    await advance(api, "PT1S")
    [private] = await deliveries(api, shop, rebound["id"])
    [missing] = await deliveries(api, shop, gone["id"])
    assert private["status_code"] is None and missing["status_code"] is None
    assert private["error"] and private["error"] == missing["error"]
    assert "10.0.0.5" not in private["error"] and "resolve" not in private["error"]
    for hook in (rebound, gone):  # nothing more is tried after this test
        r = await api.client.delete(f"/v1/webhook_endpoints/{hook['id']}", headers=shop.headers)
        assert r.status_code == 204
