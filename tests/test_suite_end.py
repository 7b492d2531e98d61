"""Runs after every other test (`suite_end`, ordered by tests/conftest.py): whatever the
whole suite did on the shared database, the ledger and the audit chain still verify, and
neither the database nor any log line of the run holds a card number, a CVC, a password, a
bearer token or a secret (tests/leaks.py)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import LOG_FILE
from tests.leaks import dump, scan, scan_lines
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


@pytest.mark.suite_end
async def test_no_card_password_token_or_secret_in_the_database_or_the_logs(api: Api) -> None:
    await api.settle()
    async with api.rt.db.connection() as conn:
        text, tables = await dump(conn)
    in_database = scan(text)
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = LOG_FILE.read_text(encoding="utf-8", errors="replace").splitlines()
    in_logs = scan_lines(lines)
    print(
        f"\nscanned {tables} tables ({len(text):,} characters) and {len(lines):,} log lines: "
        f"{sum(map(len, in_database.values()))} findings in the database, "
        f"{sum(map(len, in_logs.values()))} in the logs"
    )
    where = {  # the tables of each finding, for whoever must find its source
        section.split("\n", 1)[0]: found
        for section in text.split("-- ")[1:]
        if (found := scan(section.split("\n", 1)[-1]))
    }
    assert in_database == {}, where
    assert in_logs == {}, in_logs
