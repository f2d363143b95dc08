"""JWS signing for the OAuth client: DPoP proofs, client assertions, PKCE.

pyjwt does the JWS work (ES256 with raw r||s signatures, headers with an
embedded JWK); it is already a dependency, maintained, and fast enough for
one or two signatures per request. Verification of *incoming* tokens stays
in ``coves.auth`` (hand-rolled on purpose, see ``coves.auth.jwt``).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from coves import clock
from coves.atproto.keys import KeyError_, PrivateKey
from coves.auth.jwk import thumbprint
from coves.base64url import b64url_encode

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# How long a client assertion is good for: the AS checks it once, right away.
ASSERTION_LIFETIME = 60


def random_token(nbytes: int = 32) -> str:
    return b64url_encode(os.urandom(nbytes))


@dataclass(frozen=True)
class SigningKey:
    """An ES256 (P-256) private key with its public JWK and RFC 7638 thumbprint."""

    key: ec.EllipticCurvePrivateKey
    public_jwk: dict[str, Any] = field(init=False)
    jkt: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key.curve, ec.SECP256R1):
            raise KeyError_("OAuth keys must be P-256 (ES256)")
        jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        public = {name: jwk[name] for name in ("kty", "crv", "x", "y")}
        object.__setattr__(self, "public_jwk", public)
        object.__setattr__(self, "jkt", thumbprint(public))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_hex(cls, text: str) -> SigningKey:
        return cls(PrivateKey.from_hex(text, "p256").key)

    def to_hex(self) -> str:
        return PrivateKey("p256", self.key).to_hex()

    def sign(self, payload: dict[str, Any], headers: dict[str, Any]) -> str:
        return jwt.encode(payload, self.key, algorithm="ES256", headers=headers)


def dpop_proof(
    key: SigningKey,
    method: str,
    url: str,
    *,
    nonce: str | None,
    access_token: str | None = None,
) -> str:
    """An RFC 9449 proof for one request; ``htu`` is the URL without query or fragment."""
    htu = url.split("#", 1)[0].split("?", 1)[0]
    payload: dict[str, Any] = {
        "jti": random_token(16),
        "htm": method,
        "htu": htu,
        "iat": int(clock.wall_now()),
    }
    if nonce:
        payload["nonce"] = nonce
    if access_token is not None:
        payload["ath"] = b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest())
    return key.sign(payload, {"typ": "dpop+jwt", "jwk": key.public_jwk})


def client_assertion(key: SigningKey, kid: str, client_id: str, audience: str) -> str:
    """``private_key_jwt`` (RFC 7523): proves the confidential client to the AS."""
    now = int(clock.wall_now())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    return key.sign(payload, {"kid": kid, "typ": "JWT"})


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = random_token(48)
    challenge = b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge
