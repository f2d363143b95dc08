"""The opaque session tokens Coves hands to signed-in clients.

A token is ``cvs1.`` + base64url(nonce ‖ AES-256-GCM(claims)), the key
derived from ``OAUTH_SEAL_SECRET`` with HKDF. It names the DID and the
session id and carries its own expiry; it is only as good as the session
row it names, so deleting that row (logout, a revoked grant) makes every
token of the session useless at once. Clients cannot read or forge it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coves import clock
from coves.base64url import b64url_decode, b64url_encode
from coves.secrets import Secret

PREFIX = "cvs1."
TOKEN_TTL = 30 * 86_400.0
MAX_TOKEN_CHARS = 1024
_AAD = b"coves session token"


class InvalidSessionToken(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class SessionClaims:
    did: str
    session_id: str
    issued_at: float
    expires_at: float


def is_session_token(token: str) -> bool:
    return token.startswith(PREFIX)


class SessionTokens:
    def __init__(self, secret: Secret, ttl: float = TOKEN_TTL) -> None:
        raw = base64.b64decode(secret.reveal())
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"coves session token v1"
        ).derive(raw)
        self._aead = AESGCM(key)
        self.ttl = ttl

    def issue(self, did: str, session_id: str, *, not_after: float | None = None) -> str:
        now = clock.wall_now()
        expires = now + self.ttl if not_after is None else min(now + self.ttl, not_after)
        claims = {"did": did, "sid": session_id, "iat": int(now), "exp": int(expires)}
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, orjson.dumps(claims), _AAD)
        return PREFIX + b64url_encode(nonce + sealed)

    def open(self, token: str, *, allow_expired: bool = False) -> SessionClaims:
        """The claims of an authentic token; InvalidSessionToken otherwise."""
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_CHARS:
            raise InvalidSessionToken("malformed", "not a Coves session token")
        body = token[len(PREFIX) :]
        try:
            blob = b64url_decode(body)
        except ValueError:
            raise InvalidSessionToken("malformed", "not a Coves session token") from None
        if len(blob) < 12 + 16:
            raise InvalidSessionToken("malformed", "not a Coves session token")
        try:
            plain = self._aead.decrypt(blob[:12], blob[12:], _AAD)
        except InvalidTag:
            raise InvalidSessionToken("bad_seal", "session token is not authentic") from None
        claims = orjson.loads(plain)
        result = SessionClaims(
            did=str(claims["did"]),
            session_id=str(claims["sid"]),
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
        )
        if not allow_expired and result.expires_at <= clock.wall_now():
            raise InvalidSessionToken("expired", "session token has expired; refresh or sign in")
        return result
