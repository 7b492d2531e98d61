"""The NGINX edge of `deploy/nginx`, for real: Debian's nginx with the committed configuration
in front of three `bnpl serve` processes (and a `bnpl sandbox` for the providers), over TLS
with a self-signed certificate made here.

Only what cannot be the production value is changed, and only by exact replacement (each
one checked): the listen ports (free loopback ports), the upstream servers (the API
processes' ports, with the committed server parameters) and, for the hang scenario, the
read timeout (1 s instead of 60 s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bnpl.bench.platform import free_port
from tests.support import fresh_database

NGINX_DIR = Path(__file__).resolve().parents[3] / "deploy" / "nginx"
TOKEN = "edge-test-operator-token"
API_PROCESSES = 3
READ_TIMEOUT_S = 1


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail("nginx is not installed: `scripts/apt-install.sh nginx` (`make test` does)")
    return found


def self_signed(folder: Path) -> Path:
    """tls/tls.crt and tls/tls.key for localhost and 127.0.0.1; the certificate is returned
    (the client trusts it as its CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    tls = folder / "tls"
    tls.mkdir()
    (tls / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tls / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls / "tls.crt"


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not once in the committed configuration"
    return text.replace(old, new)


def edge_configuration(conf: Path, https: int, http: int, api_ports: list[int]) -> None:
    """The committed nginx.conf and bnpl.conf, with this machine's ports; the upstream block
    keeps the committed server parameters (max_fails, fail_timeout) and keepalive."""
    shutil.copy(NGINX_DIR / "nginx.conf", conf / "nginx.conf")
    site = (NGINX_DIR / "bnpl.conf").read_text()
    site = replace_once(site, "listen 8443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
    site = replace_once(site, "listen 8080;", f"listen 127.0.0.1:{http};")
    site = replace_once(site, "proxy_read_timeout 60s;", f"proxy_read_timeout {READ_TIMEOUT_S}s;")
    (conf / "bnpl.conf").write_text(site)
    upstreams = (NGINX_DIR / "upstreams.conf").read_text()
    server = re.search(r"^\s*server \S+ resolve (?P<params>[^;]*);", upstreams, re.M)
    keepalive = re.search(r"^\s*keepalive \d+;", upstreams, re.M)
    assert server and keepalive, "upstreams.conf lost its server or keepalive line"
    servers = "\n".join(f"    server 127.0.0.1:{p} {server['params']};" for p in api_ports)
    (conf / "upstreams.conf").write_text(
        f"upstream bnpl_api {{\n    zone bnpl_api 64k;\n{servers}\n{keepalive[0]}\n}}\n"
    )


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def spawn(name: str, argv: list[str], env: dict[str, str], folder: Path) -> Proc:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(name, process, log)


def wait_answers(url: str, proc: Proc, *, verify: Any = True, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.process.poll() is None, f"{proc.name} exited:\n{proc.tail()}"
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{proc.name} not ready:\n{proc.tail()}"
        time.sleep(0.1)


@dataclass
class Edge:
    url: str  # https://127.0.0.1:PORT
    http_url: str
    ca: Path
    database_url: str
    apis: list[Proc]
    nginx: Proc
    folder: Path
    _log_offset: int = field(default=0)

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, verify=self.tls, timeout=15, **kwargs)

    @property
    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def access_log(self) -> list[dict[str, Any]]:
        """NGINX's JSON access lines (its stdout) written since the last call."""
        text = self.nginx.log.read_text(errors="replace")
        new, self._log_offset = text[self._log_offset :], len(text)
        return [json.loads(line) for line in new.splitlines() if line.startswith("{")]

    async def access_log_after(self, settle_s: float = 0.3) -> list[dict[str, Any]]:
        """The access lines of the requests just answered: NGINX writes a request's line
        after its answer has gone out, so a moment later."""
        await asyncio.sleep(settle_s)
        return self.access_log()

    def api_address(self, index: int) -> str:
        port = re.search(r"--port (\d+)", " ".join(map(str, self.apis[index].process.args)))
        assert port
        return f"127.0.0.1:{port[1]}"


@pytest.fixture(scope="module")
async def edge_database(postgres_server: str) -> AsyncIterator[str]:
    import asyncpg

    from bnpl.kit.migrate import migrate

    async with fresh_database(postgres_server, "bnpl_edge") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield dsn


@pytest.fixture(scope="module")
def edge(
    edge_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    nginx = nginx_binary()
    folder = tmp_path_factory.mktemp("edge")
    conf = folder / "conf"
    conf.mkdir()
    ca = self_signed(conf)
    sandbox_port = free_port()
    api_ports = [free_port() for _ in range(API_PROCESSES)]
    https, http = free_port(), free_port()
    env = {
        **os.environ,
        "BNPL_DATABASE_URL": edge_database,
        "BNPL_REDIS_URL": redis_url,
        "BNPL_PROVIDERS_URL": f"http://127.0.0.1:{sandbox_port}",
        "BNPL_ADMIN_TOKEN": TOKEN,
        "BNPL_TRUSTED_PROXIES": "127.0.0.1/32",
        "BNPL_LOG_LEVEL": "WARNING",
        "BNPL_LOG_JSON": "false",
    }
    cli = [sys.executable, "-m", "bnpl.cli"]
    procs = [
        spawn("sandbox", [*cli, "sandbox", "--port", str(sandbox_port)], env, folder),
        *(
            spawn(f"api{i}", [*cli, "serve", "--port", str(port), "--workers", "1"], env, folder)
            for i, port in enumerate(api_ports)
        ),
    ]
    edge_configuration(conf, https, http, api_ports)
    try:
        wait_answers(f"http://127.0.0.1:{sandbox_port}/healthz", procs[0])
        for proc, port in zip(procs[1:], api_ports, strict=True):
            wait_answers(f"http://127.0.0.1:{port}/readyz", proc)
        user = ["-g", "daemon off; user root root;"] if os.geteuid() == 0 else ["-g", "daemon off;"]
        # As root, workers run as root too: the prefix is a private temporary folder.
        argv = [nginx, "-p", f"{folder}/", "-c", str(conf / "nginx.conf"), "-e", "stderr", *user]
        check = subprocess.run([*argv[:-2], "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proxy = spawn("nginx", argv, env, folder)
        procs.append(proxy)
        wait_answers(
            f"https://127.0.0.1:{https}/healthz",
            proxy,
            verify=ssl.create_default_context(cafile=ca),
        )
        yield Edge(
            url=f"https://127.0.0.1:{https}",
            http_url=f"http://127.0.0.1:{http}",
            ca=ca,
            database_url=edge_database,
            apis=procs[1 : 1 + API_PROCESSES],
            nginx=proxy,
            folder=folder,
        )
    finally:
        for proc in reversed(procs):
            if proc.process.poll() is None:
                os.kill(proc.process.pid, signal.SIGCONT)  # a frozen one cannot stop
                proc.process.terminate()
                try:
                    proc.process.wait(10)
                except subprocess.TimeoutExpired:
                    proc.process.kill()
                    proc.process.wait()
