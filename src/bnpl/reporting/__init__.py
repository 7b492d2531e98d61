"""Reporting (the seed's Reporting Service): real-time aggregates from events.

The consumer `reporting.record_facts` keeps, from public events, one row per checkout and one
per money figure (captures, refunds, late fees, answered plan charges), in its own schema;
`GET /v1/reports/summary` sums them over a period, and adds the plan book as it stands now
from the installments facade. Nothing imports reporting; it exposes only `register`.
"""

from __future__ import annotations

from bnpl.reporting import facts
from bnpl.runtime import Runtime

__all__ = ["register"]


def register(rt: Runtime) -> None:
    rt.bus.subscribe_batch(facts.RECORD_FACTS, facts.TYPES, facts.record)
