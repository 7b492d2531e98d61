"""The credit-bureau provider protocol (consulted only for thin-file consumers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BureauReport:
    reference: str
    found: bool
    score: int | None  # 300-850 when found


@dataclass(frozen=True, slots=True)
class BureauSubject:
    """Who a report is asked for (the fields of `CreditBureau.report`)."""

    subject_id: str
    first_name: str
    last_name: str
    date_of_birth: date
    country: str


class CreditBureau(Protocol):
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
        """Idempotent by `subject_id`; raises ProviderUnavailable on timeouts and 5xx."""
        ...
