"""The authorization matrix: every operation of the OpenAPI document, as every kind of
principal, on side A's objects (world.py), answers what API.md allows and nothing else.

Principals: anonymous, consumers A and B, merchants A and B, a revoked key (merchant A's), a
suspended merchant's key and the operator. For each operation:

- a suspended merchant's key gets 403 `merchant_suspended` on every call;
- on a guarded operation, no credentials or a revoked key get 401 `unauthenticated`, and a
  principal of a kind the operation does not admit gets 403 `forbidden`;
- on an object of side A, side B's merchant or consumer gets 404 `not_found`, the very answer
  (status, code, detail) that an id that does not exist gets: nothing tells that it exists;
- the allowed principals get the operation's success status;
- no answer to anyone but side A and the operator holds an id of side A's objects (other than
  the ids their own request named): nothing leaks through list filters or error messages;
- the denied calls changed nothing: side A's objects read the same before and after them.

Then ids of side A in request bodies and filters (a card, a plan): side B gets what an id
that does not exist gets. Every operation of the document must be in the table (`OPS`), so a
new endpoint fails here until its rule is written down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest

from bnpl.kit.ids import PREFIXES, new_id
from tests.e2e.checkout.helpers import Flow
from tests.reliability.conftest import Live
from tests.reliability.world import World, build_world
from tests.support import Api, bearer, consumer_body

PRINCIPALS = (
    "anonymous",
    "revoked_key",
    "suspended_merchant",
    "consumer_b",
    "merchant_b",
    "consumer_a",
    "merchant_a",
    "operator",
)
KIND = {
    "consumer_a": "consumer",
    "consumer_b": "consumer",
    "merchant_a": "merchant",
    "merchant_b": "merchant",
    "operator": "operator",
}
SIDE_A = {"consumer_a", "merchant_a"}
SIDE_B = {"consumer_b", "merchant_b"}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
_PREFIX = "|".join(sorted(PREFIXES, key=len, reverse=True))
ID = re.compile(rf"\b(?:{_PREFIX})_[0-9A-Z]{{26}}\b")  # any public id

# public: anyone; self: the principal acts on what is its own (no object of side A named);
# object: an object of side A named in the path (side B: 404); filter: a list filtered by an
# object of side A (side B: the answer an unknown id gets).
Scope = Literal["public", "self", "object", "filter"]


@dataclass
class Request:
    method: str
    url: str
    json: Any = None
    target: str | None = None  # the id of side A this request names, if any
    headers: dict[str, str] | None = None  # instead of the principal's own (fresh sessions)

    def ghost(self) -> Request:
        """The same request about an id that does not exist."""
        assert self.target is not None
        other = new_id(self.target.split("_")[0])
        body = (
            None
            if self.json is None
            else json.loads(json.dumps(self.json).replace(self.target, other))
        )
        return Request(self.method, self.url.replace(self.target, other), body, other, self.headers)


@dataclass
class Ctx:
    api: Api
    flow: Flow
    world: World
    cache: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        w = self.world
        return {
            "anonymous": {},
            "revoked_key": bearer(w.revoked_key),
            "suspended_merchant": w.suspended.headers,
            "consumer_a": w.a.buyer.headers,
            "consumer_b": w.b.buyer.headers,
            "merchant_a": w.a.merchant.headers,
            "merchant_b": w.b.merchant.headers,
            "operator": self.api.operator,
        }[who]

    async def once(self, name: str, make: Callable[[], Awaitable[str]]) -> str:
        """An object made for one operation's test (shared by its principals)."""
        if name not in self.cache:
            self.cache[name] = await make()
        return self.cache[name]

    async def authorized_checkout(self, name: str) -> str:
        async def make() -> str:
            body = await self.flow.authorized(self.world.a.merchant, self.world.a.buyer, 8_000)
            return str(body["id"])

        return await self.once(name, make)

    async def fresh_session(self, who: str) -> dict[str, str]:
        if KIND.get(who) != "consumer":
            return self.headers(who)
        handle = (self.world.a if who == "consumer_a" else self.world.b).buyer.handle
        tokens = await self.api.login(handle.email, handle.password)
        return bearer(tokens["access_token"])


Build = Callable[[Ctx, str], Awaitable[Request]]


@dataclass
class Op:
    scope: Scope
    build: Build
    ok: tuple[int, ...] = (200,)
    # Kinds of side A's ids that side B may see in its answer (the merchant it buys from).
    shares: tuple[str, ...] = ()


def get(url: str, kind: str | None = None) -> Build:
    async def build(ctx: Ctx, who: str) -> Request:
        target = ctx.world.a[kind] if kind else None
        return Request("GET", url.format(id=target), target=target)

    return build


def static(method: str, url: str, body: Any = None, kind: str | None = None) -> Build:
    async def build(ctx: Ctx, who: str) -> Request:
        target = ctx.world.a[kind] if kind else None
        data = json.loads(json.dumps(body).replace("{id}", target)) if target else body
        return Request(method, url.format(id=target), data, target)

    return build


async def _sign_up(ctx: Ctx, who: str) -> Request:
    return Request("POST", "/v1/consumers", consumer_body())


async def _login(ctx: Ctx, who: str) -> Request:
    h = ctx.world.a.buyer.handle
    return Request("POST", "/v1/auth/login", {"email": h.email, "password": h.password})


async def _refresh(ctx: Ctx, who: str) -> Request:
    h = ctx.world.a.buyer.handle
    tokens = await ctx.api.login(h.email, h.password)
    return Request("POST", "/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]})


async def _logout(ctx: Ctx, who: str) -> Request:
    return Request("POST", "/v1/auth/logout", headers=await ctx.fresh_session(who))


async def _delete_card(ctx: Ctx, who: str) -> Request:
    async def make() -> str:
        return await ctx.api.add_card(ctx.world.a.buyer.handle)

    pm = await ctx.once("card_to_delete", make)
    return Request("DELETE", f"/v1/me/payment_methods/{pm}", target=pm)


async def _delete_key(ctx: Ctx, who: str) -> Request:
    merchant = ctx.world.a.merchant.id

    async def make() -> str:
        r = await ctx.api.client.post(
            f"/v1/merchants/{merchant}/api_keys", headers=ctx.api.operator
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    key = await ctx.once("key_to_delete", make)
    return Request("DELETE", f"/v1/merchants/{merchant}/api_keys/{key}", target=key)


async def _delete_publishable_key(ctx: Ctx, who: str) -> Request:
    merchant = ctx.world.a.merchant.id

    async def make() -> str:
        r = await ctx.api.client.post(
            f"/v1/merchants/{merchant}/publishable_keys", headers=ctx.api.operator
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    key = await ctx.once("publishable_key_to_delete", make)
    return Request("DELETE", f"/v1/merchants/{merchant}/publishable_keys/{key}", target=key)


async def _delete_endpoint(ctx: Ctx, who: str) -> Request:
    async def make() -> str:
        r = await ctx.api.client.post(
            "/v1/webhook_endpoints",
            json={"url": "http://127.0.0.1:9/gone", "events": ["*"]},
            headers=ctx.world.a.merchant.headers,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    endpoint = await ctx.once("endpoint_to_delete", make)
    return Request("DELETE", f"/v1/webhook_endpoints/{endpoint}", target=endpoint)


async def _confirm(ctx: Ctx, who: str) -> Request:
    """Any consumer may confirm an open checkout (the shopper signs in on its page), with a
    card of their own: a fresh open checkout of merchant A for each call."""
    checkout = await ctx.flow.create(ctx.world.a.merchant, 6_000)
    side = ctx.world.b if who == "consumer_b" else ctx.world.a
    return Request(
        "POST",
        f"/v1/checkouts/{checkout['id']}/confirm",
        {"plan": "pay_in_4", "payment_method_id": side.buyer.pm},
    )


async def _capture(ctx: Ctx, who: str) -> Request:
    checkout = await ctx.authorized_checkout("to_capture")
    return Request("POST", f"/v1/checkouts/{checkout}/capture", {}, checkout)


async def _void(ctx: Ctx, who: str) -> Request:
    checkout = await ctx.authorized_checkout("to_void")
    return Request("POST", f"/v1/checkouts/{checkout}/void", None, checkout)


A_PM = {"payment_method_id": "{pm}"}


def with_card(method: str, url: str, body: dict[str, Any]) -> Build:
    """A request on side A's plan naming side A's card."""

    async def build(ctx: Ctx, who: str) -> Request:
        plan = ctx.world.a["plan"]
        data = json.loads(json.dumps(body).replace("{pm}", ctx.world.a["payment_method"]))
        return Request(method, url.format(id=plan), data, plan)

    return build


OPS: dict[str, Op] = {
    "GET /healthz": Op("public", get("/healthz")),
    "GET /readyz": Op("public", get("/readyz")),
    "GET /metrics": Op("self", get("/metrics")),
    "POST /v1/consumers": Op("public", _sign_up, (201,)),
    "GET /v1/me": Op("self", get("/v1/me")),
    "GET /v1/consumers/{consumer_id}": Op("object", get("/v1/consumers/{id}", "consumer")),
    "PUT /v1/consumers/{consumer_id}/credit_limit": Op(
        "object", static("PUT", "/v1/consumers/{id}/credit_limit", {"amount": 150_000}, "consumer")
    ),
    "POST /v1/auth/login": Op("public", _login),
    "POST /v1/auth/refresh": Op("public", _refresh),
    "POST /v1/auth/logout": Op("self", _logout, (204,)),
    "POST /v1/me/payment_methods": Op(
        "self", static("POST", "/v1/me/payment_methods", {"type": "card", "card": CARD}), (201,)
    ),
    "GET /v1/me/payment_methods": Op("self", get("/v1/me/payment_methods")),
    "DELETE /v1/me/payment_methods/{payment_method_id}": Op("object", _delete_card, (204,)),
    "GET /v1/onboarding/business_verifications/{merchant_id}": Op(
        "object", get("/v1/onboarding/business_verifications/{id}", "merchant")
    ),
    "POST /v1/merchants": Op("self", static("POST", "/v1/merchants", None), (201,)),
    "GET /v1/merchants": Op("self", get("/v1/merchants")),
    "GET /v1/merchants/{merchant_id}": Op("object", get("/v1/merchants/{id}", "merchant")),
    "PATCH /v1/merchants/{merchant_id}": Op(
        "object",
        static("PATCH", "/v1/merchants/{id}", {"config": {"mdr_bps": 399}}, "merchant"),
    ),
    "POST /v1/merchants/{merchant_id}/api_keys": Op(
        "object", static("POST", "/v1/merchants/{id}/api_keys", None, "merchant"), (201,)
    ),
    "GET /v1/merchants/{merchant_id}/api_keys": Op(
        "object", get("/v1/merchants/{id}/api_keys", "merchant")
    ),
    "DELETE /v1/merchants/{merchant_id}/api_keys/{key_id}": Op("object", _delete_key, (204,)),
    "POST /v1/merchants/{merchant_id}/publishable_keys": Op(
        "object", static("POST", "/v1/merchants/{id}/publishable_keys", None, "merchant"), (201,)
    ),
    "GET /v1/merchants/{merchant_id}/publishable_keys": Op(
        "object", get("/v1/merchants/{id}/publishable_keys", "merchant")
    ),
    "DELETE /v1/merchants/{merchant_id}/publishable_keys/{key_id}": Op(
        "object", _delete_publishable_key, (204,)
    ),
    "GET /v1/webhook_failures": Op("self", get("/v1/webhook_failures")),
    "GET /v1/dead_letters": Op("self", get("/v1/dead_letters")),
    # No dead letter in this world: the operator is let in and finds none.
    "POST /v1/dead_letters/{consumer}/{event_id}/replay": Op(
        "self", static("POST", "/v1/dead_letters/checkout.test/evt_none/replay"), (404,)
    ),
    "GET /v1/settlements": Op("self", get("/v1/settlements")),
    "GET /v1/settlements/{settlement_id}": Op("object", get("/v1/settlements/{id}", "settlement")),
    "GET /v1/settlements/{settlement_id}/report.csv": Op(
        "object", get("/v1/settlements/{id}/report.csv", "settlement")
    ),
    "POST /v1/webhook_endpoints": Op(
        "self",
        static("POST", "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/x", "events": ["*"]}),
        (201,),
    ),
    "GET /v1/webhook_endpoints": Op("self", get("/v1/webhook_endpoints")),
    "GET /v1/webhook_endpoints/{endpoint_id}": Op(
        "object", get("/v1/webhook_endpoints/{id}", "endpoint")
    ),
    "DELETE /v1/webhook_endpoints/{endpoint_id}": Op("object", _delete_endpoint, (204,)),
    "GET /v1/webhook_endpoints/{endpoint_id}/deliveries": Op(
        "object", get("/v1/webhook_endpoints/{id}/deliveries", "endpoint")
    ),
    "POST /v1/events/{event_id}/redeliver": Op(
        "object", static("POST", "/v1/events/{id}/redeliver", None, "event"), (202,)
    ),
    "GET /v1/credit/decisions/{decision_id}": Op(
        "object", get("/v1/credit/decisions/{id}", "decision")
    ),
    "GET /v1/plans/{plan_id}": Op("object", get("/v1/plans/{id}", "plan")),
    "GET /v1/me/plans": Op("self", get("/v1/me/plans")),
    "POST /v1/plans/{plan_id}/payments": Op(
        "object",
        with_card("POST", "/v1/plans/{id}/payments", {"kind": "next_installment", **A_PM}),
        (201,),
    ),
    "PUT /v1/plans/{plan_id}/payment_method": Op(
        "object", with_card("PUT", "/v1/plans/{id}/payment_method", A_PM)
    ),
    "GET /v1/payments/{payment_id}": Op("object", get("/v1/payments/{id}", "payment")),
    "GET /v1/payments": Op("filter", get("/v1/payments?plan_id={id}", "plan")),
    "POST /v1/checkouts": Op(
        "self", static("POST", "/v1/checkouts", {"amount": 5_000, "currency": "USD"}), (201,)
    ),
    "GET /v1/checkouts": Op("self", get("/v1/checkouts?status=captured")),
    "GET /v1/checkouts/{checkout_id}": Op("object", get("/v1/checkouts/{id}", "checkout")),
    "POST /v1/checkouts/{checkout_id}/confirm": Op("self", _confirm, shares=("merchant",)),
    "POST /v1/checkouts/{checkout_id}/capture": Op("object", _capture),
    "POST /v1/checkouts/{checkout_id}/void": Op("object", _void),
    "POST /v1/checkouts/{checkout_id}/refunds": Op(
        "object",
        static("POST", "/v1/checkouts/{id}/refunds", {"amount": 100}, "checkout"),
        (201,),
    ),
    "GET /v1/checkouts/{checkout_id}/refunds": Op(
        "object", get("/v1/checkouts/{id}/refunds", "checkout")
    ),
    "GET /v1/audit": Op("filter", get("/v1/audit?entity_id={id}", "checkout")),
    "GET /v1/audit/verify": Op("self", get("/v1/audit/verify")),
    "GET /v1/events": Op("self", get("/v1/events")),
    "GET /v1/events/{event_id}": Op("object", get("/v1/events/{id}", "event")),
    "GET /v1/ledger/balances": Op("self", get("/v1/ledger/balances")),
    "GET /v1/ledger/verify": Op("self", get("/v1/ledger/verify")),
    "GET /v1/ledger/entries": Op("filter", get("/v1/ledger/entries?merchant_id={id}", "merchant")),
    "GET /v1/ledger/entries/{entry_id}": Op(
        "object", get("/v1/ledger/entries/{id}", "ledger_entry")
    ),
    "GET /v1/reports/summary": Op(
        "filter", get("/v1/reports/summary?merchant_id={id}", "merchant")
    ),
    "GET /v1/me/notifications": Op("self", get("/v1/me/notifications")),
    "GET /v1/notifications": Op("filter", get("/v1/notifications?consumer_id={id}", "consumer")),
    "POST /v1/sandbox/clock": Op("self", static("POST", "/v1/sandbox/clock", {"advance": "PT1S"})),
    "GET /v1/sandbox/gateway/charges": Op(
        "filter", get("/v1/sandbox/gateway/charges?payment_method_id={id}", "payment_method")
    ),
    "GET /v1/sandbox/payouts": Op(
        "filter", get("/v1/sandbox/payouts?settlement_id={id}", "settlement")
    ),
    "POST /v1/sandbox/seed": Op("self", static("POST", "/v1/sandbox/seed", {}), (201,)),
}


@pytest.fixture(scope="module")
async def ctx(live: Live) -> Ctx:
    world = await build_world(live.api)
    return Ctx(live.api, Flow(live.api), world)


@pytest.fixture(scope="module")
async def admitted(live: Live) -> dict[str, tuple[str, ...]]:
    """The kinds of principal each operation admits, as the OpenAPI document says."""
    doc = (await live.api.client.get("/openapi.json")).json()
    return {
        f"{method.upper()} {path}": tuple(op.get("x-principals", ()))
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


async def test_every_operation_of_the_document_is_in_the_matrix(
    admitted: dict[str, tuple[str, ...]],
) -> None:
    assert sorted(admitted) == sorted(OPS)


def expected(op: Op, kinds: tuple[str, ...], who: str) -> tuple[int, str | None]:
    """(status, problem code) that `who` must get; code None: the operation's success."""
    if who == "suspended_merchant":
        return 403, "merchant_suspended"
    if op.scope == "public":
        return op.ok[0], None
    if who in ("anonymous", "revoked_key"):
        return 401, "unauthenticated"
    if KIND[who] not in kinds:
        return 403, "forbidden"
    if op.scope == "object" and who in SIDE_B:
        return 404, "not_found"
    return op.ok[0], None


async def send(ctx: Ctx, request: Request, who: str) -> httpx.Response:
    body = request.json
    if request.method == "POST" and request.url == "/v1/merchants":
        body = ctx.api.merchant_payload()  # a new merchant each time
    return await ctx.api.client.request(
        request.method,
        request.url,
        json=body,
        headers=request.headers if request.headers is not None else ctx.headers(who),
    )


def problem(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    return r.status_code, body.get("code"), body.get("detail")


async def snapshot(ctx: Ctx) -> dict[str, Any]:
    """Side A's objects as the operator and their owners read them."""
    a, api = ctx.world.a, ctx.api
    reads = {
        f"/v1/checkouts/{c}": api.operator
        for c in [a["checkout"], a["checkout_authorized"], a["checkout_open"], *ctx.cache.values()]
        if c.startswith("chk_")
    }
    reads |= {
        f"/v1/plans/{a['plan']}": api.operator,
        f"/v1/payments?plan_id={a['plan']}": api.operator,
        f"/v1/checkouts/{a['checkout']}/refunds": a.merchant.headers,
        f"/v1/merchants/{a['merchant']}": api.operator,
        f"/v1/merchants/{a['merchant']}/api_keys": api.operator,
        "/v1/webhook_endpoints": a.merchant.headers,
        "/v1/me/payment_methods": a.buyer.headers,
        f"/v1/consumers/{a['consumer']}": api.operator,
        "/v1/ledger/balances": api.operator,
    }
    seen = {}
    for url, headers in reads.items():
        r = await api.client.get(url, headers=headers)
        seen[url] = (r.status_code, r.json())
    return seen


def ids_of_side_a(ctx: Ctx) -> set[str]:
    return set(ctx.world.a.ids.values()) | set(ctx.cache.values())


@pytest.mark.parametrize("operation", list(OPS))
async def test_authorization_matrix(
    ctx: Ctx, admitted: dict[str, tuple[str, ...]], operation: str
) -> None:
    op, kinds = OPS[operation], admitted[operation]
    plan = {who: expected(op, kinds, who) for who in PRINCIPALS}
    denied = [w for w in PRINCIPALS if plan[w][1] is not None]
    allowed = [w for w in PRINCIPALS if plan[w][1] is None]
    secret_ids = ids_of_side_a(ctx)

    # The denied first: each gets its answer, and side A's objects are untouched.
    requests = {who: await op.build(ctx, who) for who in PRINCIPALS}
    before = await snapshot(ctx)
    for who in denied:
        request = requests[who]
        r = await send(ctx, request, who)
        status, code = plan[who]
        assert (r.status_code, r.json().get("code")) == (status, code), (who, r.text)
        if code == "not_found":
            ghost = await send(ctx, request.ghost(), who)
            assert problem(ghost) == problem(r), (who, "404 differs for an id that exists")
        named = {request.target} | set(ID.findall(request.url))
        leaked = (set(ID.findall(r.text)) & secret_ids) - named
        assert not leaked, (who, leaked, r.text)
    assert await snapshot(ctx) == before, "a denied request changed side A's objects"

    # Then the allowed: the operation's success, and side B sees nothing of side A.
    for who in allowed:
        request = requests[who]
        r = await send(ctx, request, who)
        assert r.status_code in op.ok, (who, r.status_code, r.text)
        if who in SIDE_B:
            named = {request.target} | set(ID.findall(request.url))
            named |= {ctx.world.a[kind] for kind in op.shares}
            leaked = (set(ID.findall(r.text)) & secret_ids) - named
            assert not leaked, (who, leaked, r.text)
            if op.scope == "filter":
                ghost = await send(ctx, request.ghost(), who)
                assert (ghost.status_code, ghost.json()) == (r.status_code, r.json()), who


async def _foreign_card_confirm(ctx: Ctx, pm: str) -> tuple[httpx.Response, str]:
    checkout = await ctx.flow.create(ctx.world.b.merchant, 6_000)
    r = await ctx.api.client.post(
        f"/v1/checkouts/{checkout['id']}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": pm},
        headers=ctx.world.b.buyer.headers,
    )
    return r, checkout["id"]


# Side B naming side A's objects inside a body or a filter: (method, url, body, kind of the
# side A id named, the principal of side B that sends it).
FOREIGN_IDS = {
    "plan payment with A's card": (
        "POST",
        "/v1/plans/{b_plan}/payments",
        {"kind": "next_installment", "payment_method_id": "{id}"},
        "payment_method",
        "consumer_b",
    ),
    "plan card change to A's card": (
        "PUT",
        "/v1/plans/{b_plan}/payment_method",
        {"payment_method_id": "{id}"},
        "payment_method",
        "consumer_b",
    ),
    "payments filtered by A's plan": (
        "GET",
        "/v1/payments?plan_id={id}",
        None,
        "plan",
        "consumer_b",
    ),
    "settlements filtered by A": (
        "GET",
        "/v1/settlements?merchant_id={id}",
        None,
        "merchant",
        "merchant_b",
    ),
}


@pytest.mark.parametrize("case", list(FOREIGN_IDS))
async def test_ids_of_another_side_in_bodies_and_filters(ctx: Ctx, case: str) -> None:
    method, url, body, kind, who = FOREIGN_IDS[case]
    target = ctx.world.a[kind]
    url = url.replace("{b_plan}", ctx.world.b["plan"]).replace("{id}", target)
    data = None if body is None else json.loads(json.dumps(body).replace("{id}", target))
    request = Request(method, url, data, target)
    before = await snapshot(ctx)
    r = await send(ctx, request, who)
    ghost = await send(ctx, request.ghost(), who)
    assert (r.status_code, r.json()) == (ghost.status_code, ghost.json()), (r.text, ghost.text)
    assert method == "GET" or r.status_code >= 400, r.text
    leaked = (set(ID.findall(r.text)) & ids_of_side_a(ctx)) - {target}
    assert not leaked, (leaked, r.text)
    assert await snapshot(ctx) == before


async def test_confirming_with_a_card_of_another_consumer(ctx: Ctx) -> None:
    r, checkout = await _foreign_card_confirm(ctx, ctx.world.a["payment_method"])
    ghost, other = await _foreign_card_confirm(ctx, new_id("pm"))
    assert r.status_code >= 400 and problem(r) == problem(ghost), (r.text, ghost.text)
    for checkout_id in (checkout, other):
        state = await ctx.api.client.get(f"/v1/checkouts/{checkout_id}", headers=ctx.api.operator)
        assert state.json()["status"] == "open", state.text
