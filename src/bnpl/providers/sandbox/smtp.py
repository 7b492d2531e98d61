"""The sandbox SMTP server: what the platform emails when `BNPL_SMTP_URL` is unset.

A real SMTP server (aiosmtpd) on the platform's own event loop; each message it accepts is
kept in `sandbox.emails`, as a mailbox provider would keep it, so tests and a developer can
read what was sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bnpl.kit.db import Database


class _Mailbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content: Any = envelope.content
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        await self.db.execute(
            "INSERT INTO sandbox.emails (mail_from, rcpt_to, message) VALUES ($1, $2, $3)",
            envelope.mail_from or "",
            list(envelope.rcpt_tos),
            text,
        )
        return "250 Message accepted"


async def start_smtp_sink(db: Database, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve SMTP on `host:port` (0: a free port) until the returned server is closed."""
    loop = asyncio.get_running_loop()
    handler = _Mailbox(db)
    return await loop.create_server(
        lambda: SMTP(handler, hostname="bnpl-sandbox", loop=loop), host, port
    )


def smtp_url(server: asyncio.Server) -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"smtp://{host}:{port}"
