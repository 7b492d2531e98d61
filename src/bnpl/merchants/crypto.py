"""Encryption of sensitive merchant fields at rest (the kit's AES-256-GCM field cipher).

The merchant id is bound in as associated data, so a ciphertext copied onto another merchant's
row does not decrypt.
"""

from __future__ import annotations

from bnpl.kit.crypto import field_cipher


def encrypt(key: bytes, plaintext: str, *, bound_to: str) -> bytes:
    return field_cipher(key).encrypt(plaintext, aad=bound_to)


def decrypt(key: bytes, blob: bytes, *, bound_to: str) -> str:
    return field_cipher(key).decrypt(blob, aad=bound_to)
