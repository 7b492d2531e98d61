"""Helpers for the merchants and onboarding tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bnpl.runtime import Runtime


@asynccontextmanager
async def bus_paused(rt: Runtime) -> AsyncIterator[None]:
    """Stop the background consumers for a moment, so a new merchant stays `pending_review`
    until the test drains the bus itself (`api.settle()` still works meanwhile)."""
    await rt.bus.stop()
    try:
        yield
    finally:
        await rt.bus.start()
