"""The bureau behind a circuit breaker and a hard deadline, as a credit decision calls it.

A credit decision waits for the bureau only within its latency budget, and never calls a
bureau that has just failed again and again: `GuardedBureau.report` either answers within
`timeout` or raises `ProviderUnavailable` (`CircuitOpen` when the breaker short-circuits the
call without reaching the bureau at all).

The breaker is the classic three-state one: *closed* (calls go through; consecutive failures
are counted), *open* after `failure_threshold` consecutive failures (calls fail at once for
`recovery_timeout_s`), then *half-open* (exactly one probe goes through: its success closes
the breaker, its failure opens it again). It is per process and not shared between pods: each
pod learns on its own that the bureau is down, after at most `failure_threshold` slow calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum

from bnpl.providers.bureau.base import BureauReport, CreditBureau
from bnpl.providers.gateway.base import ProviderUnavailable

log = logging.getLogger(__name__)

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen", "GuardedBureau"]


class CircuitOpen(ProviderUnavailable):
    """The breaker is open: the call was not made."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one dependency; single event loop, no locks.

    `clock` is a monotonic clock in seconds (injectable for tests). The counters (`calls`,
    `failures`, `short_circuits`, `opened`) are for metrics and tests.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "bureau",
    ) -> None:
        if failure_threshold < 1 or recovery_timeout_s < 0:
            raise ValueError("failure_threshold >= 1 and recovery_timeout_s >= 0")
        self.failure_threshold = failure_threshold
        self.recovery_timeout_s = recovery_timeout_s
        self.name = name
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.calls = 0
        self.failures = 0
        self.short_circuits = 0
        self.opened = 0

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.recovery_timeout_s
        ):
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open: only the one probe)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._state = BreakerState.HALF_OPEN
            self._probing = True
            return True
        self.short_circuits += 1
        return False

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._probing = False
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        self.failures += 1
        self._consecutive_failures += 1
        probe_failed, self._probing = self._probing, False
        if probe_failed or (
            self._state is BreakerState.CLOSED
            and self._consecutive_failures >= self.failure_threshold
        ):
            self.opened += 1
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            log.warning(
                "circuit opened",
                extra={"breaker": self.name, "failures": self._consecutive_failures},
            )

    def reset(self) -> None:
        """Close the breaker and forget the failures (operators and tests)."""
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._probing = False

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Guard one call: raises `CircuitOpen` when it may not go out; records its outcome
        (any exception is a failure; a cancellation just frees the half-open probe)."""
        if not self.allow():
            raise CircuitOpen(f"{self.name} circuit is open")
        self.calls += 1
        try:
            yield
        except Exception:
            self.record_failure()
            raise
        except BaseException:
            self._probing = False
            raise
        self.record_success()


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
