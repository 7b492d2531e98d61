"""Audit: hash-chained, append-only records of every state change and money movement."""

from bnpl.audit.chain import AuditEntry, Sealer, Verification, record, record_many, seal_all, verify

__all__ = [
    "AuditEntry",
    "Sealer",
    "Verification",
    "record",
    "record_many",
    "seal_all",
    "verify",
]
