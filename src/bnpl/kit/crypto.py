"""Field encryption at rest: AES-256-GCM with a random nonce per value.

Stored form: a format byte, the 12-byte nonce, then the ciphertext with its 16-byte tag. The
associated data binds a value to where it belongs (row and column), so a ciphertext copied
elsewhere fails to decrypt instead of silently showing someone else's data.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_KEY_VERSION: Final = 1  # AES-256-GCM with the platform key; room for a rotated key later
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


class DecryptionError(ValueError):
    """A stored ciphertext does not decrypt with this key and associated data."""


class FieldCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return bytes([_KEY_VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def open(self, stored: bytes, *, aad: str) -> bytes:
        if len(stored) < 1 + _NONCE_BYTES + _TAG_BYTES or stored[0] != _KEY_VERSION:
            raise DecryptionError("unknown ciphertext format")
        nonce, sealed = stored[1 : 1 + _NONCE_BYTES], stored[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, aad.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc

    def encrypt(self, plaintext: str, *, aad: str) -> bytes:
        return self.seal(plaintext.encode(), aad=aad)

    def decrypt(self, stored: bytes, *, aad: str) -> str:
        return self.open(stored, aad=aad).decode()


@lru_cache(maxsize=4)
def field_cipher(key: bytes) -> FieldCipher:
    """One cipher per key per process."""
    return FieldCipher(key)
