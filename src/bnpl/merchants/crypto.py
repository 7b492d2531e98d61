"""Encryption of sensitive merchant fields at rest: AES-256-GCM, a random nonce per value.

Stored form: a format byte, the 12-byte nonce, then the ciphertext with its 16-byte tag. The
merchant id is bound in as associated data, so a ciphertext copied onto another merchant's
row does not decrypt.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT: Final = b"\x01"  # AES-256-GCM with the platform key; room for a rotated key later
_NONCE_BYTES: Final = 12


def encrypt(key: bytes, plaintext: str, *, bound_to: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), bound_to.encode())


def decrypt(key: bytes, blob: bytes, *, bound_to: str) -> str:
    if blob[:1] != _FORMAT:
        raise ValueError("unknown ciphertext format")
    nonce, ciphertext = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    return AESGCM(key).decrypt(nonce, ciphertext, bound_to.encode()).decode()
