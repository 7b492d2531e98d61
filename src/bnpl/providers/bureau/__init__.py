"""Credit-bureau provider: the protocol, and the guard a credit decision calls it through."""

from bnpl.providers.bureau.base import BureauReport, BureauSubject, CreditBureau
from bnpl.providers.bureau.guard import BreakerState, CircuitBreaker, CircuitOpen, GuardedBureau

__all__ = [
    "BreakerState",
    "BureauReport",
    "BureauSubject",
    "CircuitBreaker",
    "CircuitOpen",
    "CreditBureau",
    "GuardedBureau",
]
