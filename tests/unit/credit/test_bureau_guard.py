"""The bureau's circuit breaker and hard deadline (`providers.bureau.guard`), on a stub
bureau and a hand-moved clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from bnpl.credit.features import History
from bnpl.providers import ProviderUnavailable
from bnpl.providers.bureau import (
    BreakerState,
    BureauReport,
    CircuitBreaker,
    CircuitOpen,
    GuardedBureau,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StubBureau:
    """Answers after `delay` seconds, or raises `error`."""

    delay: float = 0.0
    error: Exception | None = None
    calls: int = 0
    timeouts: list[float | None] = field(default_factory=list)

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
        self.calls += 1
        self.timeouts.append(timeout)
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return BureauReport("bur_1", True, 777)


async def ask(bureau: GuardedBureau, timeout: float | None = 1.0) -> BureauReport:
    return await bureau.report(
        subject_id="cus_1",
        first_name="Ada",
        last_name="Lovelace",
        date_of_birth=date(1990, 1, 1),
        country="US",
        timeout=timeout,
    )


def test_it_opens_after_the_threshold_of_consecutive_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout_s=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.allow()
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        assert breaker.state is BreakerState.CLOSED
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert (breaker.short_circuits, breaker.opened, breaker.failures) == (1, 1, 5)


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout_s=30, clock=clock)
    breaker.record_failure()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else while it is out
    breaker.record_failure()  # the probe failed: open for another recovery period
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened == 2
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()


def test_a_cancelled_probe_frees_the_half_open_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout_s=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    with pytest.raises(asyncio.CancelledError), breaker.attempt():
        raise asyncio.CancelledError
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_reset_closes_it() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(recovery_timeout_s=-1)


async def test_the_deadline_bounds_the_whole_call() -> None:
    stub = StubBureau(delay=5.0)
    guarded = GuardedBureau(stub, CircuitBreaker(failure_threshold=2))
    started = time.perf_counter()
    with pytest.raises(ProviderUnavailable, match="timeout"):
        await ask(guarded, timeout=0.02)
    assert time.perf_counter() - started < 0.5
    assert stub.timeouts == [0.02]  # the adapter is told the budget too
    assert guarded.breaker.failures == 1


async def test_failures_open_it_and_an_open_breaker_does_not_call() -> None:
    stub = StubBureau(error=ProviderUnavailable("bureau answered 503"))
    guarded = GuardedBureau(stub, CircuitBreaker(failure_threshold=2, clock=Clock()))
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await ask(guarded)
    with pytest.raises(CircuitOpen):
        await ask(guarded)
    assert stub.calls == 2
    assert issubclass(CircuitOpen, ProviderUnavailable)


async def test_an_adapter_bug_is_a_failure_not_a_crash() -> None:
    stub = StubBureau(error=KeyError("score"))
    guarded = GuardedBureau(stub, CircuitBreaker())
    with pytest.raises(ProviderUnavailable, match="KeyError"):
        await ask(guarded)
    assert guarded.breaker.failures == 1


async def test_a_good_answer_passes_through() -> None:
    guarded = GuardedBureau(StubBureau(), CircuitBreaker())
    assert await ask(guarded) == BureauReport("bur_1", True, 777)
    assert (guarded.breaker.calls, guarded.breaker.failures) == (1, 0)


def test_history_thin_file_and_cache_age() -> None:
    assert History(on_time_payments=3).thin_file
    assert not History(on_time_payments=2, late_payments=2).thin_file
    at = datetime(2026, 11, 25, tzinfo=UTC)
    history = History(bureau_checked_at=at)
    assert history.bureau_cached(at + timedelta(days=30))
    assert not history.bureau_cached(at + timedelta(days=30, seconds=1))
    assert not History().bureau_cached(at)
