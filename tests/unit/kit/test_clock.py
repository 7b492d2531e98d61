from __future__ import annotations

from datetime import UTC, timedelta

from bnpl.kit.clock import Clock, wall_now


def test_clock_is_wall_time_plus_offset_in_utc() -> None:
    clock = Clock(timedelta(days=14))
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs(now - (wall_now() + timedelta(days=14))) < timedelta(seconds=1)
    assert clock.today() == now.date()
    assert clock.offset == timedelta(days=14)
    assert abs(Clock().now() - wall_now()) < timedelta(seconds=1)
