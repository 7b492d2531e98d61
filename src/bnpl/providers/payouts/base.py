"""The payout provider protocol: money sent to a merchant's bank account, idempotent by key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PayoutResult:
    """A payout the provider accepted (`reference`: its id), or refused (`code` set: the
    account cannot receive it, e.g. `account_closed`; a new attempt needs a new key)."""

    reference: str | None
    code: str | None = None

    @property
    def paid(self) -> bool:
        return self.code is None


class PayoutProvider(Protocol):
    async def pay_out(
        self,
        *,
        amount: int,
        currency: str,
        account_number: str,
        routing_number: str | None,
        reference: str,
        idempotency_key: str,
    ) -> PayoutResult:
        """Send `amount` once per key: a repeated key answers what the first call did.
        Raises `ProviderUnavailable` when no answer came (timeout, 5xx): safe to repeat."""
        ...
