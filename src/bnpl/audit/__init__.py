"""Audit: hash-chained, append-only records of every state change and money movement."""

from bnpl.audit.chain import Sealer, Verification, record, seal_all, verify

__all__ = ["Sealer", "Verification", "record", "seal_all", "verify"]
