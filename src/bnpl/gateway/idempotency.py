"""`Idempotency-Key` handling: claim, replay, conflict and completion.

A request with a key first *claims* it (its own short transaction). The handler's business
transaction then completes it with the exact response bytes (`complete`), so the change and
its stored answer commit together. A request that failed without changing anything (a 4xx)
has its answer stored afterwards; one that crashed or answered 5xx releases the key so the
client may retry. A claim left by a crashed process is taken over after a lock timeout: its
transaction never committed, so retrying it cannot do anything twice.

Stored answers are encrypted (AES-256-GCM, bound to their owner and key): they can hold
secrets shown once, such as a login's refresh token.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import asyncpg

from bnpl.kit.crypto import FieldCipher
from bnpl.kit.db import Database

MAX_KEY_LENGTH = 255


@dataclass
class Claim:
    owner: str
    key: str
    cipher: FieldCipher
    completed: bool = False

    @property
    def aad(self) -> str:
        return _aad(self.owner, self.key)


def _aad(owner: str, key: str) -> str:
    return f"gateway.idempotency_keys:{owner}:{key}"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes


Decision = Literal["claimed", "reused", "in_progress"] | StoredResponse

current_claim: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


def request_hash(method: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.digest()


class IdempotencyStore:
    def __init__(self, db: Database, ttl_s: int, lock_timeout_s: int, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher
        self.ttl_s = ttl_s
        self.lock_timeout_s = lock_timeout_s

    async def claim(self, owner: str, key: str, fingerprint: bytes) -> Decision:
        async with self.db.transaction() as conn:
            claimed = await conn.fetchval(
                """
                INSERT INTO gateway.idempotency_keys AS k (owner, key, request_hash, locked_at)
                VALUES ($1, $2, $3, now())
                ON CONFLICT (owner, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash, created_at = now(), locked_at = now(),
                    completed_at = NULL, response_status = NULL, response_body = NULL
                WHERE k.created_at < now() - make_interval(secs => $4)
                   OR (k.completed_at IS NULL AND k.request_hash = EXCLUDED.request_hash
                       AND k.locked_at < now() - make_interval(secs => $5))
                RETURNING true
                """,
                owner,
                key,
                fingerprint,
                float(self.ttl_s),
                float(self.lock_timeout_s),
            )
            if claimed:
                return "claimed"
            row = await conn.fetchrow(
                "SELECT request_hash, completed_at, response_status, response_body "
                "FROM gateway.idempotency_keys WHERE owner = $1 AND key = $2",
                owner,
                key,
            )
        if row is None:  # released between the two statements: claim again
            return await self.claim(owner, key, fingerprint)
        if bytes(row["request_hash"]) != fingerprint:
            return "reused"
        if row["completed_at"] is None:
            return "in_progress"
        stored = bytes(row["response_body"]) if row["response_body"] is not None else b""
        body = self.cipher.open(stored, aad=_aad(owner, key)) if stored else b""
        return StoredResponse(row["response_status"], body)

    def claim_for(self, owner: str, key: str) -> Claim:
        return Claim(owner, key, self.cipher)

    async def store(self, claim: Claim, status: int, body: bytes) -> None:
        async with self.db.connection() as conn:
            await complete(conn, claim, status, body)

    async def release(self, claim: Claim) -> None:
        await self.db.execute(
            "DELETE FROM gateway.idempotency_keys WHERE owner = $1 AND key = $2 "
            "AND completed_at IS NULL",
            claim.owner,
            claim.key,
        )

    async def purge_expired(self) -> int:
        result = await self.db.execute(
            "DELETE FROM gateway.idempotency_keys "
            "WHERE created_at < now() - make_interval(secs => $1)",
            float(self.ttl_s),
        )
        return int(result.split()[-1])


async def complete(conn: asyncpg.Connection, claim: Claim, status: int, body: bytes) -> None:
    """Store the answer of a claimed request, in the caller's transaction."""
    await conn.execute(
        """
        UPDATE gateway.idempotency_keys
        SET completed_at = now(), locked_at = NULL, response_status = $3, response_body = $4
        WHERE owner = $1 AND key = $2
        """,
        claim.owner,
        claim.key,
        status,
        claim.cipher.seal(body, aad=claim.aad) if body else None,
    )
    claim.completed = True
