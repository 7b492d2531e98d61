"""`GET /v1/credit/decisions/{id}` and the decisions real confirms make, bureau personas
included (API.md "Credit decisions", DOMAIN.md "Credit decision")."""

from __future__ import annotations

import time

import pytest

from bnpl import credit
from bnpl.runtime import Runtime
from tests.integration.credit.helpers import bureau, checkout, decision, purchase
from tests.support import Api, MerchantHandle, assert_problem

FIELDS = {
    "id",
    "consumer_id",
    "checkout_id",
    "outcome",
    "reasons",
    "score",
    "model_version",
    "features",
    "latency_ms",
    "created_at",
    "bureau",
    "amount",
    "currency",
    "plan",
}


@pytest.fixture(scope="module")
async def merchant(api: Api) -> MerchantHandle:
    return await api.active_merchant()


async def test_an_approved_decision_is_stored_with_what_it_was_decided_from(
    api: Api, rt: Runtime, merchant: MerchantHandle
) -> None:
    consumer = await api.consumer()
    pm = await api.add_card(consumer)
    confirmed = await purchase(api, merchant, consumer, pm, amount=20_000)
    assert confirmed["status"] == "authorized", confirmed
    assert confirmed["decision"]["outcome"] == "approved"

    body = await decision(api, confirmed["decision"]["id"])
    assert set(body) == FIELDS
    assert body["id"] == confirmed["decision"]["id"]
    assert body["id"].startswith("dec_")
    assert body["consumer_id"] == consumer.id
    assert body["checkout_id"] == confirmed["id"]
    assert (body["outcome"], body["reasons"]) == ("approved", [])
    assert (body["amount"], body["currency"], body["plan"]) == (20_000, "USD", "monthly_6")
    model = credit.engine(rt).model
    assert body["model_version"] == model.version == "risk-2026.11.1"
    assert 0.0 <= body["score"] <= credit.engine(rt).policy.risk_cutoff
    # The features are the model's, by name, as the decision saw them.
    assert set(body["features"]) == set(model.feature_names)
    features = body["features"]
    assert features["amount"] == 20_000
    assert (features["credit_limit"], features["outstanding_balance"]) == (100_000, 0)
    assert features["approved_checkouts_24h"] == 0
    assert features["thin_file"] == 1
    assert features["merchant_category"] == 6  # MCC 5941, sports and outdoor
    # A new consumer is a thin file: the bureau answer fetched when KYC passed is used.
    assert body["bureau"] == "cached"
    assert 740 <= features["bureau_score"] <= 820
    assert 0 < body["latency_ms"] < 1_000
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]


async def test_a_second_checkout_sees_the_first_in_its_features(
    api: Api, merchant: MerchantHandle
) -> None:
    consumer = await api.consumer()
    pm = await api.add_card(consumer)
    await purchase(api, merchant, consumer, pm, amount=30_000)
    second = await purchase(api, merchant, consumer, pm, amount=10_000)
    features = (await decision(api, second["decision"]["id"]))["features"]
    assert features["approved_checkouts_24h"] == 1
    assert features["outstanding_balance"] == 30_000
    assert features["utilisation"] == pytest.approx(0.3)


async def test_a_rule_declined_decision_is_stored_with_its_score(
    api: Api, rt: Runtime, merchant: MerchantHandle
) -> None:
    consumer = await api.consumer()
    pm = await api.add_card(consumer)
    r = await api.client.put(
        f"/v1/consumers/{consumer.id}/credit_limit", json={"amount": 15_000}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    confirmed = await purchase(api, merchant, consumer, pm, amount=20_000)
    assert confirmed["status"] == "declined"
    body = await decision(api, confirmed["decision"]["id"])
    assert (body["outcome"], body["reasons"]) == ("declined", ["insufficient_credit_limit"])
    # Rule 6 declined before the bureau was needed; the model still scored the decision
    # (without a bureau score), reproducibly from the stored features.
    model = credit.engine(rt).model
    assert (body["model_version"], body["bureau"]) == (model.version, "not_consulted")
    assert body["features"]["credit_limit"] == 15_000
    assert body["features"]["bureau_score"] is None
    assert body["score"] == pytest.approx(model.predict_default_probability(body["features"]))


async def test_a_failed_down_payment_turns_the_decision_into_payment_method_declined(
    api: Api, merchant: MerchantHandle
) -> None:
    consumer = await api.consumer()
    pm = await api.add_card(consumer, "4000000000000002")
    confirmed = await purchase(api, merchant, consumer, pm, amount=20_000, plan="pay_in_4")
    assert confirmed["status"] == "declined", confirmed
    body = await decision(api, confirmed["decision"]["id"])
    assert (body["outcome"], body["reasons"]) == ("declined", ["payment_method_declined"])
    assert body["score"] is not None  # rules 1-7 had passed: the model did score it


async def test_only_operators_read_decisions(api: Api, merchant: MerchantHandle) -> None:
    consumer = await api.consumer()
    pm = await api.add_card(consumer)
    decision_id = (await purchase(api, merchant, consumer, pm))["decision"]["id"]
    path = f"/v1/credit/decisions/{decision_id}"
    assert_problem(await api.client.get(path), 401, "unauthenticated")
    bad = {"Authorization": "Bearer not-a-token"}
    assert_problem(await api.client.get(path, headers=bad), 401, "unauthenticated")
    assert_problem(await api.client.get(path, headers=merchant.headers), 403, "forbidden")
    # Not even the consumer the decision is about.
    assert_problem(await api.client.get(path, headers=consumer.headers), 403, "forbidden")
    unknown = "/v1/credit/decisions/dec_01jzzzzzzzzzzzzzzzzzzzzzzz"
    assert_problem(await api.client.get(unknown, headers=api.operator), 404, "not_found")


async def test_the_endpoint_is_in_the_openapi_document(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/credit/decisions/{decision_id}"]["get"]
    assert {"200", "401", "403", "404"} <= set(operation["responses"])


# -- bureau personas, through real confirms ----------------------------------------------------


async def test_thinfile_persona_is_a_cached_no_hit(api: Api, merchant: MerchantHandle) -> None:
    consumer = await api.consumer(last_name="Thinfile")
    pm = await api.add_card(consumer)
    body = await decision(api, (await purchase(api, merchant, consumer, pm))["decision"]["id"])
    assert body["bureau"] == "cached"
    assert body["features"]["bureau_score"] is None  # the bureau has no file on them
    assert body["score"] is not None


async def test_risky_persona_is_declined_by_the_model(
    api: Api, rt: Runtime, merchant: MerchantHandle
) -> None:
    engine = credit.engine(rt)
    decided = {}
    for last_name in ("Risky", "Lovelace"):
        consumer = await api.consumer(last_name=last_name)
        pm = await api.add_card(consumer)
        confirmed = await purchase(api, merchant, consumer, pm, amount=50_000)
        body = await decision(api, confirmed["decision"]["id"])
        assert body["bureau"] == "cached"
        # The stored score is the model's on the stored features: reproducible.
        assert body["score"] == pytest.approx(
            engine.model.predict_default_probability(body["features"])
        )
        decided[last_name] = body
    risky, good = decided["Risky"], decided["Lovelace"]
    assert risky["score"] > good["score"]
    assert risky["features"]["bureau_score"] == 300
    # A new account with a 300 bureau score is above even the lenient sandbox cutoff (0.65).
    assert risky["score"] > engine.policy.risk_cutoff
    assert (risky["outcome"], risky["reasons"]) == ("declined", ["risk_score_too_high"])
    assert risky["model_version"] == engine.model.version
    assert (good["outcome"], good["reasons"]) == ("approved", [])


async def test_an_uncached_thin_file_is_fetched_with_the_names_from_identity(
    api: Api, rt: Runtime, merchant: MerchantHandle
) -> None:
    """The checkout does not pass names: the decision reads them from identity."""
    engine = credit.engine(rt)
    engine.breaker.reset()
    consumer = await api.consumer(last_name="Risky")
    pm = await api.add_card(consumer)
    async with rt.db.connection() as conn:
        await engine.features.forget_bureau(conn, consumer.id)
    calls = await bureau(rt).sandbox_calls(consumer.id)
    body = await decision(api, (await purchase(api, merchant, consumer, pm))["decision"]["id"])
    assert body["bureau"] == "fetched"
    # 300 is the Risky persona's: the bureau was asked with the consumer's real last name.
    assert body["features"]["bureau_score"] == 300
    assert await bureau(rt).sandbox_calls(consumer.id) == calls + 1
    # ... and its answer is cached for the next decision.
    body = await decision(api, (await purchase(api, merchant, consumer, pm))["decision"]["id"])
    assert (body["bureau"], body["features"]["bureau_score"]) == ("cached", 300)
    assert await bureau(rt).sandbox_calls(consumer.id) == calls + 1


async def test_slowbureau_never_holds_the_decision_past_its_budget(
    api: Api, rt: Runtime, merchant: MerchantHandle
) -> None:
    engine = credit.engine(rt)
    budget_ms = rt.settings.bureau_budget_ms
    assert engine.bureau_budget_s == budget_ms / 1000 == 0.05
    consumer = await api.consumer(last_name="Slowbureau")  # its prefetch timed out
    pm = await api.add_card(consumer)
    async with rt.db.connection() as conn:
        await engine.features.forget_bureau(conn, consumer.id)
    engine.breaker.reset()
    checkout_id = await checkout(api, merchant)
    started = time.perf_counter()
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": "monthly_6", "payment_method_id": pm},
        headers=consumer.headers,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    assert r.status_code == 200, r.text
    assert wall_ms < 1_000  # the bureau answers after 2 s
    body = await decision(api, r.json()["decision"]["id"])
    assert body["bureau"] == "unavailable"
    assert body["features"]["bureau_score"] is None
    assert body["features"]["thin_file"] == 1
    assert body["score"] is not None  # decided without the bureau
    assert budget_ms * 0.9 <= body["latency_ms"] <= budget_ms + 30


async def test_bureaudown_still_gets_a_decision(
    api: Api, rt: Runtime, merchant: MerchantHandle
) -> None:
    credit.engine(rt).breaker.reset()
    consumer = await api.consumer(last_name="Bureaudown")  # its prefetch got a 503
    pm = await api.add_card(consumer)
    confirmed = await purchase(api, merchant, consumer, pm)
    assert confirmed["status"] in ("authorized", "declined")
    body = await decision(api, confirmed["decision"]["id"])
    assert body["bureau"] == "unavailable"
    assert body["features"]["bureau_score"] is None
    assert body["score"] is not None
    assert body["latency_ms"] < rt.settings.bureau_budget_ms + 30
