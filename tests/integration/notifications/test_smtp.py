"""Email over SMTP against a real SMTP server (aiosmtpd on loopback): sessions reused, a
session the server dropped replaced without losing or doubling the email, and text outside
ASCII delivered intact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from bnpl.notifications.smtp import SmtpSessions, build_message


class Inbox:
    """aiosmtpd's handler: what arrived, how many sessions, the server side of each."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.sessions = 0
        self.connections: list[SMTP] = []

    def protocol(self) -> SMTP:
        connection = SMTP(self, hostname="test")
        self.connections.append(connection)
        return connection

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
async def server() -> AsyncIterator[tuple[Inbox, asyncio.Server, str]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(inbox.protocol, "127.0.0.1", 0)
    port = smtp.sockets[0].getsockname()[1]
    yield inbox, smtp, f"smtp://127.0.0.1:{port}"
    smtp.close()


def message(n: int, subject: str = "Your purchase is approved", text: str = "Hi Ada") -> object:
    return build_message(
        sender="BNPL <n@bnpl.example>",
        to="ada@example.com",
        subject=subject,
        text=text,
        message_id=f"<ntf_{n}@bnpl>",
    )


async def test_emails_share_a_few_sessions(server: tuple[Inbox, asyncio.Server, str]) -> None:
    inbox, _, url = server
    sessions = SmtpSessions(url, sessions=2)
    try:
        await asyncio.gather(*(sessions.send(message(n)) for n in range(10)))  # type: ignore[arg-type]
    finally:
        await sessions.aclose()
    assert len(inbox.messages) == 10
    assert inbox.sessions <= 2  # not one per email


async def test_a_session_dropped_by_the_server_is_replaced_and_the_email_sent_once(
    server: tuple[Inbox, asyncio.Server, str],
) -> None:
    inbox, _, url = server
    sessions = SmtpSessions(url, sessions=1)
    try:
        await sessions.send(message(1))  # type: ignore[arg-type]
        # The server closes the idle session (as servers do after their idle timeout).
        for connection in inbox.connections:
            assert connection.transport is not None
            connection.transport.close()
        await asyncio.sleep(0.05)
        await sessions.send(message(2))  # type: ignore[arg-type]
    finally:
        await sessions.aclose()
    ids = [message_from_bytes(m, policy=default)["Message-ID"] for m in inbox.messages]
    assert ids == ["<ntf_1@bnpl>", "<ntf_2@bnpl>"]
    assert inbox.sessions == 2  # the second email on a new session


async def test_text_outside_ascii_arrives_intact(server: tuple[Inbox, asyncio.Server, str]) -> None:
    inbox, _, url = server
    sessions = SmtpSessions(url)
    try:
        await sessions.send(message(1, subject="Pago recibido, José", text="Hola José: 12,50 €"))  # type: ignore[arg-type]
        await sessions.send(message(2))  # type: ignore[arg-type]
    finally:
        await sessions.aclose()
    accented, plain = (message_from_bytes(m, policy=default) for m in inbox.messages)
    assert accented["Subject"] == "Pago recibido, José"
    assert accented.get_content().strip() == "Hola José: 12,50 €"
    # ASCII stays readable on the wire (7-bit, no base64), as the sandbox's readers expect.
    assert plain["Subject"] == "Your purchase is approved"
    assert b"Hi Ada" in inbox.messages[1]
