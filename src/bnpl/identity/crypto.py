"""Secrets at rest and credentials: field encryption, password hashing, tokens.

- Personal data (phone, date of birth, address) and gateway tokens are encrypted with
  AES-256-GCM. A stored value is `version (1 byte) || nonce (12 random bytes) || ciphertext+tag`.
  The associated data binds it to its row and column, so a ciphertext copied into another row
  or column fails to decrypt instead of silently showing someone else's data.
- Passwords are hashed with argon2id (argon2-cffi's RFC 9106 low-memory defaults: 64 MiB, 3
  passes). Hashing is CPU- and memory-heavy, so it runs in worker threads, never on the event
  loop: a pool of its own, one thread per CPU, so a burst of logins queues instead of taking
  every default-executor thread (and 64 MiB per thread) from the rest of the process. The
  queue is bounded: a request that would find more than `max_waiting_per_thread` hashes per
  thread already waiting is shed at once (`HashingOverloaded`, answered 503 `overloaded`)
  rather than waiting seconds behind a burst, while the hashes already queued finish in time.
- Access tokens are short-lived HS256 JWTs carrying the session id; refresh tokens are opaque
  random strings stored only as their SHA-256.

All token times are wall-clock time (`wall_now`), never the sandbox's business clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bnpl.kit.crypto import DecryptionError, FieldCipher, field_cipher
from bnpl.kit.ids import new_id

__all__ = ["DecryptionError", "FieldCipher", "field_cipher"]

# --- field encryption -------------------------------------------------------------------------


def aad(table: str, column: str, row_id: str) -> str:
    """The associated data of one stored value: where it belongs."""
    return f"identity.{table}.{column}:{row_id}"


# --- passwords --------------------------------------------------------------------------------

_hasher: Final = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
HASH_THREADS: Final = max(2, os.cpu_count() or 2)
_hash_pool: Final = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")
# Hashes submitted to the pool and not finished (running or waiting). Counted down by the
# job's own completion, so a caller that gave up waiting does not free a place early.
_in_pool = 0
_in_pool_lock: Final = threading.Lock()


class HashingOverloaded(Exception):
    """Too many password hashes are already waiting: the request is shed, not queued."""


def hashing_has_room(max_waiting_per_thread: int) -> bool:
    """Would a hash be admitted now (see `hash_password`)?"""
    return _in_pool < HASH_THREADS * (1 + max_waiting_per_thread)


def _admit(max_waiting_per_thread: int | None) -> None:
    global _in_pool
    with _in_pool_lock:
        if max_waiting_per_thread is not None and not hashing_has_room(max_waiting_per_thread):
            raise HashingOverloaded
        _in_pool += 1


def _finished(_: object) -> None:
    global _in_pool
    with _in_pool_lock:
        _in_pool -= 1


T = TypeVar("T")


async def _off_loop(max_waiting_per_thread: int | None, fn: Callable[..., T], *args: object) -> T:
    _admit(max_waiting_per_thread)
    try:
        job: Future[T] = _hash_pool.submit(fn, *args)
    except BaseException:
        _finished(None)
        raise
    job.add_done_callback(_finished)
    return await asyncio.wrap_future(job)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so both failures take the same time.
    return _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str, *, max_waiting_per_thread: int | None = None) -> str:
    """Hash in the pool; `HashingOverloaded` if more than `max_waiting_per_thread` hashes per
    thread are already waiting (None: no bound)."""
    return await _off_loop(max_waiting_per_thread, _hasher.hash, password)


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    ok: bool
    rehash: bool  # the stored hash uses outdated parameters


def _verify(stored: str | None, password: str) -> PasswordCheck:
    target = stored if stored is not None else _dummy_hash()
    try:
        _hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(False, False)
    if stored is None:
        return PasswordCheck(False, False)
    return PasswordCheck(True, _hasher.check_needs_rehash(stored))


async def verify_password(
    stored: str | None, password: str, *, max_waiting_per_thread: int | None = None
) -> PasswordCheck:
    """Check `password` against `stored` (None: an unknown account, still costs one hash);
    bounded like `hash_password`."""
    return await _off_loop(max_waiting_per_thread, _verify, stored, password)


# --- tokens -----------------------------------------------------------------------------------

ISSUER: Final = "bnpl"
_ALGORITHM: Final = "HS256"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    consumer_id: str
    session_id: str


def issue_access_token(
    key: bytes, consumer_id: str, session_id: str, now: datetime, ttl_s: int
) -> str:
    claims = {
        "iss": ISSUER,
        "sub": consumer_id,
        "sid": session_id,
        "jti": new_id("tok"),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def read_access_token(key: bytes, token: str) -> AccessClaims | None:
    """The claims of a genuine, unexpired access token (checked against wall-clock time)."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "sid", "jti", "iat", "exp", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    sub, sid = claims.get("sub"), claims.get("sid")
    if not isinstance(sub, str) or not isinstance(sid, str):
        return None
    return AccessClaims(sub, sid)


REFRESH_TOKEN_PREFIX: Final = "rt_"  # noqa: S105 (a prefix)


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
