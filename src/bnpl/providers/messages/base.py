"""The SMS and push provider protocols: a message sent once per idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MessageResult:
    """A message the provider accepted (`reference`: its id) or refused (`code`, e.g.
    `invalid_number`: sending it again would not help)."""

    reference: str | None
    code: str | None = None

    @property
    def sent(self) -> bool:
        return self.code is None


class SmsSender(Protocol):
    async def send_sms(self, *, to: str, body: str, idempotency_key: str) -> MessageResult:
        """Raises `ProviderUnavailable` when no answer came: safe to repeat with the key."""
        ...


class PushSender(Protocol):
    async def send_push(
        self, *, user_id: str, title: str, body: str, idempotency_key: str
    ) -> MessageResult:
        """Raises `ProviderUnavailable` when no answer came: safe to repeat with the key."""
        ...
