"""Runs after every other test (`suite_end`, ordered by tests/conftest.py): whatever the
whole suite did on the shared database, the ledger and the audit chain still verify."""

from __future__ import annotations

import pytest

from tests.support import Api


@pytest.mark.suite_end
async def test_the_ledger_and_the_audit_chain_verify_after_the_whole_suite(api: Api) -> None:
    await api.settle()
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    assert r.status_code == 200, r.text
    failing = [c for c in r.json()["checks"] if not c["ok"]]
    assert r.json()["ok"] is True and failing == [], failing
    r = await api.client.get("/v1/audit/verify", headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True, r.json()
