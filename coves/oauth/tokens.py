"""The opaque session tokens Coves hands to signed-in clients.

A token is ``cvs2.`` + base64url of the claims sealed by
:class:`coves.secrets.SecretBox` (the one sealing mechanism: AES-256-GCM,
a key id in every sealed value, a ring of keys that open). The ring's keys
are derived (HKDF) from ``OAUTH_SEAL_SECRET``, which seals, and from each
``OAUTH_SEAL_OLD_SECRETS`` entry, which still open: the secret can be rotated
without signing anyone out, and tokens of a secret that is dropped stop
opening. Tokens from before key ids (``cvs1.`` + base64url(nonce ‖ sealed))
are the box's legacy form and open until they expire (30 days at most).

A token names the DID and the session id and carries its own expiry; it is
only as good as the session row it names, so deleting that row (logout, a
revoked grant) makes every token of the session useless at once. Clients
cannot read or forge it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coves import clock
from coves.base64url import b64url_decode, b64url_encode
from coves.secrets import SealedValueError, Secret, SecretBox

PREFIX = "cvs2."
LEGACY_PREFIX = "cvs1."  # no key id; sealed before OAUTH_SEAL_OLD_SECRETS existed
TOKEN_TTL = 30 * 86_400.0
MAX_TOKEN_CHARS = 1024
_CONTEXT = "coves session token"  # the associated data: a token is nothing else
_LEGACY_ENVELOPE = b"\x01"  # SecretBox's form without a key id
_MIN_SEALED = 12 + 16


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
    return token.startswith((PREFIX, LEGACY_PREFIX))


def _token_key(secret: Secret) -> Secret:
    """The box key of a seal secret: derived, so the secret itself seals nothing."""
    raw = base64.b64decode(secret.reveal())
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"coves session token v1"
    ).derive(raw)
    return Secret(base64.b64encode(key).decode("ascii"))


def _malformed() -> InvalidSessionToken:
    return InvalidSessionToken("malformed", "not a Coves session token")


class SessionTokens:
    def __init__(
        self, secret: Secret, *, old_secrets: Iterable[Secret] = (), ttl: float = TOKEN_TTL
    ) -> None:
        self._box = SecretBox(_token_key(secret), old_keys=[_token_key(old) for old in old_secrets])
        self.ttl = ttl

    @property
    def key_id(self) -> str:
        """The id of the key new tokens are sealed with."""
        return self._box.current_key_id

    def issue(self, did: str, session_id: str, *, not_after: float | None = None) -> str:
        now = clock.wall_now()
        expires = now + self.ttl if not_after is None else min(now + self.ttl, not_after)
        claims = {"did": did, "sid": session_id, "iat": int(now), "exp": int(expires)}
        sealed = self._box.seal(orjson.dumps(claims), context=_CONTEXT)
        return PREFIX + b64url_encode(sealed)

    def open(self, token: str, *, allow_expired: bool = False) -> SessionClaims:
        """The claims of an authentic token; InvalidSessionToken otherwise."""
        if len(token) > MAX_TOKEN_CHARS or not is_session_token(token):
            raise _malformed()
        legacy = token.startswith(LEGACY_PREFIX)
        body = token[len(LEGACY_PREFIX if legacy else PREFIX) :]
        try:
            blob = b64url_decode(body)
        except ValueError:
            raise _malformed() from None
        if len(blob) < _MIN_SEALED:
            raise _malformed()
        try:
            plain = self._box.open(_LEGACY_ENVELOPE + blob if legacy else blob, context=_CONTEXT)
        except SealedValueError:
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
