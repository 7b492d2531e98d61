"""Email out over SMTP: a few sessions kept open and reused, and messages built cheaply.

A session per email (connect, EHLO, MAIL, RCPT, DATA, QUIT) cost the workers more than
everything else they do for a purchase, and so did the standard library's `EmailMessage`,
which parses every header it is given. So: at most `SESSIONS` connections, each reused for
one email after another; a connection the server closed while it sat idle is replaced and
the email tried once more on the new one (it never reached the server, so it cannot arrive
twice). Messages are `MIMEText` with the compat32 policy: plain headers, 7-bit when the text
is ASCII, base64 UTF-8 when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
from email.header import Header
from email.mime.text import MIMEText
from typing import Final
from urllib.parse import urlsplit

import aiosmtplib

SESSIONS: Final = 4
TIMEOUT_S: Final = 10.0
EHLO_NAME: Final = "bnpl.local"  # named, so that no connection asks the resolver for an FQDN


def build_message(*, sender: str, to: str, subject: str, text: str, message_id: str) -> MIMEText:
    ascii_text = text.isascii()
    message = MIMEText(text, "plain", "us-ascii" if ascii_text else "utf-8")
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["Message-ID"] = message_id  # a receiver dedupes a resend by it
    return message


class SmtpSessions:
    """Up to `SESSIONS` open connections to the SMTP server of `url`, shared by the sends."""

    def __init__(self, url: str, sessions: int = SESSIONS) -> None:
        parts = urlsplit(url)
        self._options = {
            "hostname": parts.hostname or "127.0.0.1",
            "port": parts.port or 25,
            "timeout": TIMEOUT_S,
            "local_hostname": EHLO_NAME,
            "use_tls": parts.scheme == "smtps",
            "start_tls": False if parts.scheme == "smtp" else None,
        }
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(sessions)

    async def send(self, message: MIMEText) -> None:
        """Send one message; SMTP errors and OSError go to the caller."""
        async with self._slots:
            reused = bool(self._idle)
            client = self._idle.pop() if reused else await self._connect()
            try:
                try:
                    await client.send_message(message)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    if not reused:
                        raise
                    # Closed by the server while it sat idle: nothing was sent on it.
                    await self._close(client)
                    client = await self._connect()
                    await client.send_message(message)
            except BaseException:
                await self._close(client)
                raise
            self._idle.append(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(**self._options)  # type: ignore[arg-type]
        await client.connect()
        return client

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await client.quit()
            await self._close(client)

    @staticmethod
    async def _close(client: aiosmtplib.SMTP) -> None:
        with contextlib.suppress(Exception):
            client.close()
