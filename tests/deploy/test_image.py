"""The Dockerfile, .dockerignore and compose file pass their checks, and broken copies fail."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import yaml


def test_the_committed_image_and_compose_pass(check: ModuleType) -> None:
    assert check.check_dockerfile() == []
    assert check.check_dockerignore() == []
    assert check.check_compose() == []


def test_a_dockerfile_that_runs_as_root_or_installs_unpinned_tools_fails(
    check: ModuleType, tmp_path: Path
) -> None:
    text = (check.ROOT / "Dockerfile").read_text()
    as_root = tmp_path / "root.Dockerfile"
    as_root.write_text(text.replace("USER 10001:10001\n", ""))
    problems = check.check_dockerfile(as_root)
    assert any("non-root" in p for p in problems), problems

    with_gcc = tmp_path / "gcc.Dockerfile"
    with_gcc.write_text(
        text.replace("ENTRYPOINT", "RUN apt-get update && apt-get install -y gcc\nENTRYPOINT")
    )
    problems = check.check_dockerfile(with_gcc)
    assert any("hadolint" in p and "DL3008" in p for p in problems), problems  # unpinned
    assert any("gcc" in p and "final stage" in p for p in problems), problems

    unlocked = tmp_path / "unlocked.Dockerfile"
    unlocked.write_text(text.replace("uv sync --frozen", "uv sync"))
    assert any("--frozen" in p for p in check.check_dockerfile(unlocked))


def test_a_dockerignore_that_drops_the_sources_fails(check: ModuleType, tmp_path: Path) -> None:
    ignore = tmp_path / ".dockerignore"
    ignore.write_text((check.ROOT / ".dockerignore").read_text().replace("!src/\n", ""))
    assert check.check_dockerignore(ignore) == [".dockerignore: the Dockerfile copies src, ignored"]


def test_a_compose_role_that_does_not_exist_fails(check: ModuleType, tmp_path: Path) -> None:
    compose = yaml.safe_load((check.DEPLOY / "compose.yaml").read_text())
    compose["services"]["worker-money"]["command"] = ["work", "--consumers", "x"]
    compose["services"]["api"]["depends_on"]["nowhere"] = {"condition": "service_started"}
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(compose))
    problems = check.check_compose(broken)
    assert any("worker-money runs ['work'" in p for p in problems), problems
    assert any("unknown service nowhere" in p for p in problems), problems
