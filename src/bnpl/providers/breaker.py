"""A circuit breaker around one provider (the card gateway, the credit bureau).

The classic three-state breaker: *closed* (calls go through; consecutive failures are
counted), *open* after `failure_threshold` consecutive failures (calls fail at once for
`recovery_timeout_s`), then *half-open* (exactly one probe goes through: its success closes
the breaker, its failure opens it again). It is per process and not shared between pods: each
pod learns on its own that a provider is down, after at most `failure_threshold` failed calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from bnpl.providers.gateway.base import ProviderUnavailable

log = logging.getLogger(__name__)

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen"]


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
        name: str = "provider",
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
