"""The import contract between the platform's packages, checked on the source with `ast`.

- A context (`bnpl.<A>`) may use another context `bnpl.<B>` only through its facade:
  `import bnpl.B` or `from bnpl.B import name` (where `name` is not one of B's modules),
  never `bnpl.B.<module>`.
- Infrastructure (kit, messaging, scheduler, gateway, providers) imports no context, except
  the gateway, which records audit entries through the audit facade.
- kit imports nothing of the platform outside kit.
- No package imports the composition root (app, bootstrap, cli, contexts, bench,
  supervisor), which imports everything.
- Contexts depend on each other without cycles.

Every import counts, wherever it is written: in a function, under `TYPE_CHECKING`, or as an
`importlib.import_module("...")` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

CONTEXTS = frozenset(
    [
        "identity",
        "onboarding",
        "merchants",
        "credit",
        "checkout",
        "installments",
        "payments",
        "notifications",
        "reporting",
        "audit",
        "ledger",
        "lake",
        "sandbox",
        "ops",
        "web",
    ]
)
INFRASTRUCTURE = frozenset({"kit", "messaging", "scheduler", "gateway", "providers"})
ALLOWED_INFRASTRUCTURE_TO_CONTEXT = frozenset({("gateway", "audit")})
COMPOSITION_ROOT = frozenset({"app", "bootstrap", "cli", "contexts", "bench", "supervisor"})


@dataclass(frozen=True)
class Module:
    name: str  # bnpl.credit.service
    is_package: bool  # an __init__.py
    source: str


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the module imported, as precisely as known: bnpl.credit.domain
    line: int


def load(src: Path = SRC) -> dict[str, Module]:
    modules = {}
    for path in sorted((src / "bnpl").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, is_package, path.read_text(encoding="utf-8"))
    return modules


def _resolve_relative(module: Module, level: int, target: str | None) -> str:
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{target}" if target else package


def imports_of(module: Module, known: Iterable[str]) -> Iterator[Import]:
    """Every platform module `module` imports; `known` names every module of the platform."""
    known = set(known)
    for node in ast.walk(ast.parse(module.source, filename=module.name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module.name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, node.level, node.module)
                if node.level
                else node.module or ""
            )
            for alias in node.names:
                # `from bnpl.credit import domain` imports the module bnpl.credit.domain, and
                # `from bnpl import credit` the package bnpl.credit
                candidate = f"{base}.{alias.name}"
                precise = candidate in known or base == "bnpl"
                yield Import(module.name, candidate if precise else base, node.lineno)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "import_module")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(module.name, node.args[0].value, node.lineno)


def package_of(name: str) -> str | None:
    """`bnpl.credit.service` -> `credit`; top-level modules (`bnpl.app`) count as packages."""
    parts = name.split(".")
    if parts[0] != "bnpl" or len(parts) < 2:
        return None
    return parts[1]


# Known breaches, each with the reason it is tolerated for now. An entry that no longer
# matches anything fails `test_exemptions_are_still_needed`, so the list only shrinks.
EXEMPTIONS: dict[tuple[str, str], str] = {}


def violations(
    modules: Mapping[str, Module], exemptions: Mapping[tuple[str, str], str] = EXEMPTIONS
) -> list[str]:
    found = []
    for module in modules.values():
        source = package_of(module.name)
        if source is None:
            continue
        for imp in imports_of(module, modules):
            target = package_of(imp.target)
            if target is None or target == source:
                continue
            where = f"{imp.importer}:{imp.line} imports {imp.target}"
            if source in COMPOSITION_ROOT or (imp.importer, imp.target) in exemptions:
                continue  # the composition root wires everything together
            if target in COMPOSITION_ROOT:
                found.append(f"{where}: the composition root is imported by no package")
            elif source == "kit":
                found.append(f"{where}: kit imports nothing of the platform outside kit")
            elif source in INFRASTRUCTURE and target in CONTEXTS:
                if (source, target) not in ALLOWED_INFRASTRUCTURE_TO_CONTEXT:
                    found.append(f"{where}: infrastructure must not import a context")
                elif imp.target != f"bnpl.{target}":
                    found.append(f"{where}: use the facade bnpl.{target}")
            elif source in CONTEXTS and target in CONTEXTS and imp.target != f"bnpl.{target}":
                found.append(f"{where}: use the facade bnpl.{target}, not its modules")
    return sorted(found)


def context_graph(modules: Mapping[str, Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in modules.values():
        source = package_of(module.name)
        if source not in CONTEXTS:
            continue
        edges = graph.setdefault(source, set())
        for imp in imports_of(module, modules):
            target = package_of(imp.target)
            if target in CONTEXTS and target != source:
                edges.add(target)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# --- the contract, on the real source ------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = load()
    assert "bnpl.kit.money" in found and "bnpl.gateway" in found
    return found


def test_imports_follow_the_contract(modules: dict[str, Module]) -> None:
    assert violations(modules) == []


def test_exemptions_are_still_needed(modules: dict[str, Module]) -> None:
    for importer, target in EXEMPTIONS:
        assert importer in modules and any(
            imp.target == target for imp in imports_of(modules[importer], modules)
        ), f"{importer} no longer imports {target}: remove the exemption"
    assert len(violations(modules, exemptions={})) == len(EXEMPTIONS)


def test_contexts_do_not_depend_on_each_other_in_cycles(modules: dict[str, Module]) -> None:
    assert cycles(context_graph(modules)) == []


def test_every_package_is_classified(modules: dict[str, Module]) -> None:
    packages = {package_of(m.name) for m in modules.values() if m.is_package}
    packages.discard("bnpl")
    packages.discard(None)
    unknown = {p for p in packages if p not in CONTEXTS | INFRASTRUCTURE | COMPOSITION_ROOT}
    assert unknown == set(), "add new packages to CONTEXTS or INFRASTRUCTURE"


# --- the checker itself fails on violations ------------------------------------------------


def fake(sources: Mapping[str, str], packages: Iterable[str] = ()) -> dict[str, Module]:
    packages = set(packages)
    return {name: Module(name, name in packages, src) for name, src in sources.items()}


FACADES = {
    "bnpl.credit": "",
    "bnpl.credit.domain": "",
    "bnpl.identity": "",
    "bnpl.identity.repository": "",
    "bnpl.audit": "",
    "bnpl.audit.chain": "",
    "bnpl.kit": "",
    "bnpl.kit.money": "",
    "bnpl.messaging": "",
    "bnpl.config": "",
}
PACKAGES = {"bnpl.credit", "bnpl.identity", "bnpl.audit", "bnpl.kit", "bnpl.messaging"}


@pytest.mark.parametrize(
    ("importer", "source", "message"),
    [
        ("bnpl.identity.service", "from bnpl.credit.domain import score", "facade bnpl.credit"),
        ("bnpl.identity.service", "import bnpl.credit.domain", "facade bnpl.credit"),
        ("bnpl.identity.service", "from bnpl.credit import domain", "facade bnpl.credit"),
        (
            "bnpl.identity.service",
            "def f():\n    from bnpl.credit.domain import score\n",  # hidden in a function
            "facade bnpl.credit",
        ),
        (
            "bnpl.identity.service",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from bnpl.credit.domain import Score\n",
            "facade bnpl.credit",
        ),
        (
            "bnpl.identity.service",
            "from importlib import import_module\nimport_module('bnpl.credit.domain')\n",
            "facade bnpl.credit",
        ),
        ("bnpl.messaging.bus", "from bnpl.credit import score", "must not import a context"),
        ("bnpl.kit.money", "from bnpl.messaging import Event", "kit imports nothing"),
        ("bnpl.kit.money", "from bnpl.config import Settings", "kit imports nothing"),
        ("bnpl.gateway.context", "from bnpl.audit.chain import record", "facade bnpl.audit"),
        ("bnpl.credit.service", "from bnpl.app import create_app", "composition root"),
    ],
)
def test_the_checker_catches(importer: str, source: str, message: str) -> None:
    found = violations(fake({**FACADES, importer: source}, PACKAGES))
    assert len(found) == 1, found
    assert message in found[0]
    assert found[0].startswith(importer + ":")


@pytest.mark.parametrize(
    ("importer", "source"),
    [
        ("bnpl.identity.service", "from bnpl.credit import score"),
        ("bnpl.identity.service", "import bnpl.credit"),
        ("bnpl.identity.service", "from bnpl import credit"),
        ("bnpl.identity.service", "from bnpl.identity.repository import find"),
        ("bnpl.identity.service", "from . import repository\nfrom .repository import find"),
        ("bnpl.gateway.context", "from bnpl import audit"),
        ("bnpl.messaging.bus", "from bnpl.kit.money import Money\nimport asyncpg"),
        ("bnpl.kit.money", "from bnpl.kit import ids\nfrom .ids import new_id"),
    ],
)
def test_the_checker_allows(importer: str, source: str) -> None:
    assert violations(fake({**FACADES, importer: source}, PACKAGES)) == []


def test_relative_imports_are_resolved() -> None:
    modules = fake(
        {**FACADES, "bnpl.identity.service": "from ..credit.domain import score"}, PACKAGES
    )
    (found,) = violations(modules)
    assert "imports bnpl.credit.domain" in found


def test_the_checker_finds_cycles() -> None:
    modules = fake(
        {
            "bnpl.credit.service": "from bnpl import identity",
            "bnpl.identity.service": "import bnpl.checkout",
            "bnpl.checkout.service": "def later():\n    from bnpl.credit import decide\n",
            "bnpl.ledger.service": "from bnpl.credit import x",
        }
    )
    assert cycles(context_graph(modules)) == [["checkout", "credit", "identity"]]
    modules.pop("bnpl.checkout.service")
    assert cycles(context_graph(modules)) == []
