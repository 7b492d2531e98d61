"""The alert rules and the dashboard pass their checks, broken copies fail; and the metrics
they are built on are what the platform exports: the request histogram per route template,
the bus's lag and dead letters, the verification outcomes."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Api


def test_the_committed_rules_and_dashboard_pass(check: ModuleType) -> None:
    assert check.check_alerts() == []
    assert check.check_dashboard() == []
    rules = yaml.safe_load((check.DEPLOY / "prometheus" / "alerts.yaml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "BnplHighErrorRate",
        "BnplHighLatency",
        "BnplConsumerLag",
        "BnplOutboxStuck",
        "BnplLedgerVerificationFailed",
        "BnplAuditChainBroken",
        "BnplDbPoolSaturated",
    } <= names


def test_broken_rules_fail(check: ModuleType, tmp_path: Path) -> None:
    rules = yaml.safe_load((check.DEPLOY / "prometheus" / "alerts.yaml").read_text())
    first, second, third = rules["groups"][0]["rules"][:3]
    first["expr"] = "sum(rate(bnpl_http_requests_totl[5m])) > 1"  # no such metric
    second["expr"] = "sum(rate(bnpl_http_request_duration_seconds_count[5m]) > "  # no parse
    third["annotations"]["runbook_url"] = "docs/operations.md#no-such-section"
    broken = tmp_path / "alerts.yaml"
    broken.write_text(yaml.safe_dump(rules))
    problems = check.check_alerts(broken)
    assert any("bnpl_http_requests_totl is not exported" in p for p in problems), problems
    assert any(f"alert {second['alert']}: PromQL does not parse" in p for p in problems)
    assert any("#no-such-section is not in the docs" in p for p in problems), problems


def test_a_dashboard_on_a_missing_metric_fails(check: ModuleType, tmp_path: Path) -> None:
    board = json.loads((check.DEPLOY / "grafana" / "bnpl.json").read_text())
    panel = next(p for p in board["panels"] if p["title"] == "Requests per second")
    panel["targets"][0]["expr"] = "sum(rate(bnpl_http_request_seconds_count[5m]))"
    broken = tmp_path / "bnpl.json"
    broken.write_text(json.dumps(board))
    problems = check.check_dashboard(broken)
    assert problems == [
        "dashboard panel 'Requests per second': bnpl_http_request_seconds_count not exported"
    ]


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await api.client.get("/metrics", headers=api.operator)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


async def test_requests_bus_and_verifications_on_metrics(iso_api: Api) -> None:
    merchant = await iso_api.create_merchant()
    await iso_api.client.get(f"/v1/merchants/{merchant['id']}", headers=iso_api.operator)
    await iso_api.client.request("BREW", f"/v1/merchants/{merchant['id']}")
    count = "bnpl_http_request_duration_seconds_count"
    before = await scrape(iso_api)
    route = (("method", "GET"), ("route", "/v1/merchants/{merchant_id}"), ("status", "200"))
    assert before[(count, route)] >= 1  # the template, not the id
    assert not any(merchant["id"] in str(labels) for _, labels in before)
    assert any(("method", "other") in labels for name, labels in before if name == count)

    # The bus: a consumer's lag, and a dead letter counted until it is replayed.
    await iso_api.settle()
    event_id = await iso_api.rt.db.fetchval(
        "SELECT event_id FROM messaging.events ORDER BY id DESC LIMIT 1"
    )
    await iso_api.rt.db.execute(
        "INSERT INTO messaging.dead_letters (consumer, event_id, error) "
        "VALUES ('deploy.test_consumer', $1, 'boom')",
        event_id,
    )
    metrics = await scrape(iso_api)
    assert metrics[("bnpl_dead_letters", (("consumer", "deploy.test_consumer"),))] == 1
    assert metrics[("bnpl_outbox_head_position", ())] >= 1
    assert metrics[("bnpl_outbox_unsequenced_events", ())] == 0
    pool = {s: metrics[("bnpl_db_pool_connections", (("state", s),))] for s in ("busy", "max")}
    assert 0 <= pool["busy"] <= pool["max"] == iso_api.rt.settings.db_pool_max
    lags = {
        labels: v for (name, labels), v in metrics.items() if name == "bnpl_consumer_lag_events"
    }
    assert (("consumer", "onboarding.verify_business"),) in lags
    await iso_api.rt.db.execute(
        "DELETE FROM messaging.dead_letters WHERE consumer = 'deploy.test_consumer'"
    )
    metrics = await scrape(iso_api)
    assert metrics[("bnpl_dead_letters", (("consumer", "deploy.test_consumer"),))] == 0

    # Verifications are counted by outcome.
    ledger = ("bnpl_ledger_verifications_total", (("outcome", "ok"),))
    audit = ("bnpl_audit_verifications_total", (("outcome", "ok"),))
    assert (await iso_api.client.get("/v1/ledger/verify", headers=iso_api.operator)).json()["ok"]
    assert (await iso_api.client.get("/v1/audit/verify", headers=iso_api.operator)).json()["ok"]
    after = await scrape(iso_api)
    assert after[ledger] == metrics.get(ledger, 0) + 1
    assert after[audit] == metrics.get(audit, 0) + 1
