"""deploy/check.py, imported as the module `deploy_check`, with its tools installed
(scripts/deploy-tools.sh: once per machine; `make test` does it before the suite)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHECK = Path(__file__).resolve().parents[2] / "deploy" / "check.py"


@pytest.fixture(scope="session")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check", CHECK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_check"] = module
    spec.loader.exec_module(module)
    module.ensure_tools()
    return module


@pytest.fixture(scope="session")
def rendered(check: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """Every overlay, rendered by the pinned kustomize."""
    return {o: check.render(check.K8S / "overlays" / o) for o in check.OVERLAYS}
