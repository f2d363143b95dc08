"""Secret values and encryption at rest.

A :class:`Secret` never shows its value in ``repr``/``str``/logs; code must
call :meth:`Secret.reveal` at the one point it needs the plaintext, which
makes accidental leaks easy to spot in review.

:class:`SecretBox` seals values stored in PostgreSQL with AES-256-GCM under a
key ring: the current ``ENCRYPTION_KEY`` seals, and it or any older key
(``ENCRYPTION_OLD_KEYS``) opens. Every sealed value names the key that
sealed it (a key id derived from the key, which reveals nothing about it), so
opening never guesses, a start-up check can say which key is missing, and
``coves rotate-key`` finds the values that still need re-sealing. The
envelope is our own because the ready-made ones do not fit: Fernet (and
MultiFernet's rotation) has no associated data, which we use to bind a value
to its row, and Tink's keysets would add a large native dependency for a
40-line format.

Format: ``0x02 | key id (8) | nonce (12) | ciphertext+tag``. Values written
before key ids (``0x01 | nonce | ciphertext+tag``) are still opened, by
trying each key, and re-sealed by ``coves rotate-key``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_LEGACY = 0x01
_VERSION = 0x02
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER = 1 + _KEY_ID_BYTES
LEGACY_KEY_ID = "legacy"


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


def equal_in_constant_time(given: object, expected: str) -> bool:
    """``hmac.compare_digest`` for text a client sent: it refuses non-ASCII ``str``
    (TypeError, i.e. a 500), so both sides are compared as UTF-8 bytes."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


class SealedValueError(ValueError):
    """A sealed value cannot be opened (wrong key, unknown key, wrong context, damaged)."""


class UnknownKey(SealedValueError):
    """The value was sealed with a key that is not in the ring."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed with key {key_id}, which is not configured")
        self.key_id = key_id


def decode_key(key: Secret) -> bytes:
    """The 32 raw bytes of a base64 key; ValueError otherwise."""
    try:
        raw = base64.b64decode(key.reveal(), validate=True)
    except binascii.Error:
        raise ValueError("encryption key must be base64") from None
    if len(raw) != 32:
        raise ValueError("encryption key must be 32 bytes")
    return raw


def key_id(raw: bytes) -> bytes:
    """A stable, non-secret name for a key: an HMAC of a fixed label under the key."""
    return hmac.new(raw, b"coves secretbox key id", hashlib.sha256).digest()[:_KEY_ID_BYTES]


class SecretBox:
    """AES-256-GCM for secrets stored in PostgreSQL, over a key ring.

    Each value gets a fresh 96-bit nonce; the associated data binds a
    ciphertext to its purpose (for example the row it belongs to, see
    ``coves.db.sealed``), so a ciphertext copied into another row fails to
    open.
    """

    def __init__(self, key: Secret, *, old_keys: Iterable[Secret] = ()) -> None:
        current = decode_key(key)
        self._current_id = key_id(current)
        self._current = AESGCM(current)
        self._ring: dict[bytes, AESGCM] = {self._current_id: self._current}
        for old in old_keys:
            raw = decode_key(old)
            self._ring.setdefault(key_id(raw), AESGCM(raw))

    @property
    def current_key_id(self) -> str:
        return self._current_id.hex()

    @property
    def key_ids(self) -> list[str]:
        """Every key id that opens values, the current one first."""
        return [kid.hex() for kid in self._ring]

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext, context.encode())
        return bytes([_VERSION]) + self._current_id + nonce + sealed

    def open(self, sealed: bytes, *, context: str) -> bytes:
        sealed = bytes(sealed)
        aad = context.encode()
        if sealed[:1] == bytes([_LEGACY]) and len(sealed) >= 1 + _NONCE_BYTES + _TAG_BYTES:
            nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
            for aead in self._ring.values():
                try:
                    return aead.decrypt(nonce, body, aad)
                except InvalidTag:
                    continue
            raise SealedValueError("no configured key opens this value")
        if sealed[:1] != bytes([_VERSION]) or len(sealed) < _HEADER + _NONCE_BYTES + _TAG_BYTES:
            raise SealedValueError("not a sealed value")
        kid = sealed[1:_HEADER]
        keyed = self._ring.get(kid)
        if keyed is None:
            raise UnknownKey(kid.hex())
        nonce = sealed[_HEADER : _HEADER + _NONCE_BYTES]
        try:
            return keyed.decrypt(nonce, sealed[_HEADER + _NONCE_BYTES :], aad)
        except InvalidTag:
            raise SealedValueError("the value does not open: damaged or moved") from None

    def is_current(self, sealed: bytes) -> bool:
        """True when ``sealed`` is already sealed with the current key (nothing to rotate)."""
        return bytes(sealed[:_HEADER]) == bytes([_VERSION]) + self._current_id


def sealed_key_id(sealed: bytes) -> str:
    """The key id a sealed value names (``legacy`` for values from before key ids)."""
    sealed = bytes(sealed)
    if sealed[:1] == bytes([_VERSION]) and len(sealed) >= _HEADER:
        return sealed[1:_HEADER].hex()
    return LEGACY_KEY_ID
