"""The API against its OpenAPI document, fuzzed by schemathesis with every check, as each kind
of principal (a consumer, a merchant, the operator), over every operation.

Schemathesis runs as its CLI does (`schemathesis run`: the examples, coverage, fuzzing and
stateful phases) against the platform served on a real port (`live`), with a fixed seed and
a few examples per operation, so that CI is repeatable and takes about a minute. The ids of
real objects on both sides of the world (`world.py`) are offered for path parameters half of
the time, so that requests reach the business logic and not only a 404.

A longer run by hand (docs/reliability.md):

    BNPL_CONTRACT_EXAMPLES=50 BNPL_CONTRACT_SEED=7 \
        uv run pytest -s tests/reliability/test_contract.py

The JSON report of each run is kept in BNPL_CONTRACT_REPORTS (a folder) when it is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import Live
from tests.reliability.world import World, build_world

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
EXAMPLES = int(os.environ.get("BNPL_CONTRACT_EXAMPLES", "5"))
SEED = int(os.environ.get("BNPL_CONTRACT_SEED", "1"))
TIMEOUT_S = float(os.environ.get("BNPL_CONTRACT_TIMEOUT_S", "600"))

# The operator goes last: it may suspend a merchant or revoke a key the others use.
PRINCIPALS = ("consumer", "merchant", "operator")

# Path parameters and the kind of object (world.py) whose ids are offered for them.
PATH_IDS = {
    "merchant_id": ("merchant",),
    "key_id": ("api_key",),
    "consumer_id": ("consumer",),
    "payment_method_id": ("payment_method",),
    "checkout_id": ("checkout", "checkout_authorized", "checkout_open"),
    "plan_id": ("plan", "plan_authorized"),
    "decision_id": ("decision",),
    "payment_id": ("payment",),
    "endpoint_id": ("endpoint",),
    "event_id": ("event",),
    "settlement_id": ("settlement",),
    "entry_id": ("ledger_entry",),
}

# Operations that apply a business rule API.md answers with 422 (beyond the schema's own):
# a schema-valid request may be refused by them, with the rule's code.
BUSINESS_RULES = {
    ("POST", "/v1/checkouts"): "amount_out_of_range (merchant's range), amount_mismatch (items)",
    ("POST", "/v1/checkouts/{checkout_id}/confirm"): "plan_not_available, invalid_payment_method",
    ("POST", "/v1/plans/{plan_id}/payments"): "invalid_payment_method (not the consumer's card)",
    ("PUT", "/v1/plans/{plan_id}/payment_method"): "invalid_payment_method",
    ("POST", "/v1/checkouts/{checkout_id}/capture"): "amount_exceeds_authorized",
    ("POST", "/v1/checkouts/{checkout_id}/refunds"): "amount_exceeds_refundable",
    ("POST", "/v1/me/payment_methods"): "invalid_card (Luhn, expiry)",
    ("POST", "/v1/webhook_endpoints"): "invalid_webhook_url (the host must resolve)",
    ("POST", "/v1/sandbox/clock"): "time only moves forward, at most 100 years ahead",
    # Rules between fields, which JSON Schema cannot state (`validation_error`):
    ("POST", "/v1/merchants"): "config: min_amount <= max_amount, within the plans' range",
    ("PATCH", "/v1/merchants/{merchant_id}"): "config: as above, merged with the config in force",
    ("GET", "/v1/reports/summary"): "`from` must not be after `to`",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def config(world: World, principal: str, token: str) -> str:
    """The schemathesis.toml of one run."""
    lines = [f"seed = {SEED}", "[generation]", f"max-examples = {EXAMPLES}"]
    lines += ["[checks]", "enabled = true"]
    if principal == "consumer":
        # Logging out (an operation under test) ends the session: log in again on a 401.
        buyer = world.a.buyer.handle
        lines += [
            "[auth.dynamic.openapi.bearer]",
            'path = "/v1/auth/login"',
            f"payload = {_toml({'email': buyer.email, 'password': buyer.password})}",
            'extract_selector = "/access_token"',
            "retry_on = [401]",
        ]
    else:
        lines += ["[auth.openapi.bearer]", f"bearer = {_toml(token)}"]
    lines.append("[dictionaries]")
    for name, kinds in PATH_IDS.items():
        values = [side[kind] for side in (world.a, world.b) for kind in kinds]
        lines.append(f"{name} = {_toml({'values': values})}")
    lines.append("[parameters]")
    for name in PATH_IDS:
        lines.append(f'"path.{name}" = {_toml({"dictionary": name, "probability": 0.5})}')
    for (method, path), rule in BUSINESS_RULES.items():
        lines += [
            "[[operations]]",
            f"# {rule}",
            f"include-method = {_toml(method)}",
            f"include-path = {_toml(path)}",
            "[operations.checks.positive_data_acceptance]",
            'expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]',
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
async def world(live: Live) -> World:
    return await build_world(live.api)


async def run_schemathesis(live: Live, cfg: str, folder: Path) -> dict[str, Any]:
    (folder / "schemathesis.toml").write_text(cfg)
    report = folder / "report.json"
    argv = [
        SCHEMATHESIS,
        "--config-file",
        str(folder / "schemathesis.toml"),
        "run",
        f"{live.url}/openapi.json",
        "--checks",
        "all",
        "--workers",
        "1",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--request-timeout",
        "60",
    ]
    with open(folder / "output.txt", "wb") as out:  # noqa: ASYNC230 (a local file, once)
        # Awaited, not waited for: this event loop serves the platform under test meanwhile.
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=folder
        )
        try:
            await asyncio.wait_for(proc.wait(), TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert report.exists(), (folder / "output.txt").read_text()[-3000:]
    body: dict[str, Any] = json.loads(report.read_text())
    return body


def failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{f['code']} {f['title']}: {', '.join(map(str, f['operations']))}"
        for f in report["failures"]
    ] + [f"error: {json.dumps(e)[:300]}" for e in report["errors"]]


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_the_api_keeps_its_openapi_contract(
    live: Live, world: World, principal: str, tmp_path: Path
) -> None:
    token = {"operator": live.api.admin_token, "merchant": world.a.merchant.secret}.get(
        principal, world.a.buyer.handle.access_token
    )
    report = await run_schemathesis(live, config(world, principal, token), tmp_path)
    kept = os.environ.get("BNPL_CONTRACT_REPORTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        shutil.copy(tmp_path / "report.json", Path(kept) / f"{principal}.json")
        shutil.copy(tmp_path / "output.txt", Path(kept) / f"{principal}.txt")
    cases = report["test_cases"]
    print(
        f"\n{principal}: {report['operations']['tested']} operations, "
        f"{cases['generated']} cases, {cases['unique_failures']} unique failures, "
        f"{len(report['errors'])} errors, {report['running_time']:.1f} s"
    )
    assert report["operations"]["tested"] == report["operations"]["total"], report["operations"]
    found = failures(report)
    assert found == [], "\n".join(found) + "\n" + (tmp_path / "output.txt").read_text()[-20000:]
