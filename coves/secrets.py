"""Secret values and encryption at rest.

A :class:`Secret` never shows its value in ``repr``/``str``/logs; code must
call :meth:`Secret.reveal` at the one point it needs the plaintext, which
makes accidental leaks easy to spot in review.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


class SecretBox:
    """AES-256-GCM for secrets stored in PostgreSQL.

    Each value gets a fresh 96-bit nonce; the associated data binds a
    ciphertext to its purpose (for example the row it belongs to), so a
    ciphertext copied into another row fails to decrypt.
    """

    def __init__(self, key: Secret) -> None:
        raw = base64.b64decode(key.reveal())
        if len(raw) != 32:
            raise ValueError("encryption key must be 32 bytes")
        self._aead = AESGCM(raw)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, *, context: str) -> bytes:
        if not sealed.startswith(_VERSION) or len(sealed) < 1 + 12 + 16:
            raise ValueError("not a sealed value")
        nonce = sealed[1:13]
        return self._aead.decrypt(nonce, sealed[13:], context.encode())
