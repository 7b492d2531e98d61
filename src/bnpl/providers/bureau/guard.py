"""The bureau behind a circuit breaker and a hard deadline, as a credit decision calls it.

A credit decision waits for the bureau only within its latency budget, and never calls a
bureau that has just failed again and again: `GuardedBureau.report` either answers within
`timeout` or raises `ProviderUnavailable` (`CircuitOpen` when the breaker short-circuits the
call without reaching the bureau at all).

The breaker is `providers.breaker.CircuitBreaker` (per process, three states).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from bnpl.providers.breaker import BreakerState, CircuitBreaker, CircuitOpen
from bnpl.providers.bureau.base import BureauReport, CreditBureau
from bnpl.providers.gateway.base import ProviderUnavailable

log = logging.getLogger(__name__)

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen", "GuardedBureau"]


class GuardedBureau:
    """A `CreditBureau` whose `report` answers within `timeout` or raises
    `ProviderUnavailable`, behind a circuit breaker."""

    def __init__(self, inner: CreditBureau, breaker: CircuitBreaker | None = None) -> None:
        self.inner = inner
        self.breaker = breaker or CircuitBreaker()

    async def report(
        self,
        *,
        subject_id: str,
        first_name: str,
        last_name: str,
        date_of_birth: date,
        country: str,
        timeout: float | None = None,
    ) -> BureauReport:
        with self.breaker.attempt():
            try:
                # A hard deadline: an HTTP client's timeouts are per phase (connect, write,
                # each read), so only this bounds the whole call.
                async with asyncio.timeout(timeout):
                    return await self.inner.report(
                        subject_id=subject_id,
                        first_name=first_name,
                        last_name=last_name,
                        date_of_birth=date_of_birth,
                        country=country,
                        timeout=timeout,
                    )
            except ProviderUnavailable:
                raise
            except TimeoutError as exc:
                raise ProviderUnavailable("bureau timeout") from exc
            except Exception as exc:
                # A malformed answer or an adapter bug: the decision goes on without the
                # bureau, but the stack trace is kept.
                log.exception("bureau call failed")
                raise ProviderUnavailable(f"bureau error: {type(exc).__name__}") from exc
