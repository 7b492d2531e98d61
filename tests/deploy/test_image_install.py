"""What the image's build stage installs, installed the same way here (no container engine
runs on these machines): `uv sync --frozen --no-dev --no-editable` into a fresh environment,
then every module imported and the roles run from it, outside the source tree. It catches a
runtime import of a dev-only package, and package data (migrations, the risk model) that the
wheel would leave out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bnpl.bench.platform import free_port
from tests.support import fresh_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("image") / "venv"
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The command of the Dockerfile's last `uv sync`, whatever its flags become.
    command = re.findall(r"uv sync ([^\n\\]+)", dockerfile)[-1].split()
    assert "--frozen" in command and "--no-dev" in command, command
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    subprocess.run(
        [uv, "sync", *command, "--quiet"],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
        check=True,
    )
    return venv


def run_env(tmp: Path, **extra: str) -> dict[str, str]:
    """As in the image: HOME and the data folder under a scratch folder, no bytecode written,
    nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BNPL_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    return {
        **env,
        "HOME": str(tmp),
        "BNPL_DATA_DIR": str(tmp / "bnpl"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BNPL_LOG_LEVEL": "WARNING",
        **extra,
    }


def test_every_module_imports_without_the_dev_dependencies(image_env: Path, tmp_path: Path) -> None:
    script = (
        "import importlib, pkgutil, bnpl\n"
        "assert 'site-packages' in bnpl.__file__, bnpl.__file__\n"
        "for m in pkgutil.walk_packages(bnpl.__path__, 'bnpl.'):\n"
        "    importlib.import_module(m.name)\n"
        "import importlib.util as u\n"
        "print(','.join(p for p in ('pytest', 'httpx', 'mypy', 'ruff') if u.find_spec(p)))\n"
    )
    run = subprocess.run(
        [str(image_env / "bin" / "python"), "-c", script],
        cwd=tmp_path,
        env=run_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == ""  # no dev dependency in the image


@pytest.fixture
async def image_database(postgres_server: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_server, "bnpl_image") as dsn:
        yield dsn


def test_the_roles_run_from_the_installed_package(
    image_env: Path, image_database: str, tmp_path: Path
) -> None:
    bnpl = str(image_env / "bin" / "bnpl")
    env = run_env(tmp_path, BNPL_DATABASE_URL=image_database, BNPL_ADMIN_TOKEN="image-token")
    migrate = subprocess.run(
        [bnpl, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert "messaging" in migrate.stdout and "ledger" in migrate.stdout  # the SQL shipped
    again = subprocess.run([bnpl, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.stdout.strip() == "nothing to apply"

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [bnpl, "serve", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.2)
        r = httpx.get(
            f"http://127.0.0.1:{port}/v1/merchants",
            headers={"Authorization": "Bearer image-token"},
        )
        assert r.status_code == 200, r.text
    finally:
        serve.terminate()
        serve.wait(20)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
