"""Onboarding and merchants talk only by events: neither imports the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bnpl

SRC = Path(bnpl.__file__).parent


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"), [("onboarding", "merchants"), ("merchants", "onboarding")]
)
def test_no_import_between_onboarding_and_merchants(package: str, forbidden: str) -> None:
    bad = {
        m
        for m in _imports(package)
        if m == f"bnpl.{forbidden}" or m.startswith(f"bnpl.{forbidden}.")
    }
    assert not bad, f"bnpl.{package} imports {sorted(bad)}"
