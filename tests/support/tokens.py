"""Minting real credentials for tests: service-auth JWTs, OAuth access tokens, DPoP proofs.

Signed with real P-256 / secp256k1 keys as raw r||s (what atproto signers
emit), so the verifiers under test run their production code paths.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from coves import clock
from coves.atproto.keys import JWT_ALG, PrivateKey
from coves.base64url import b64url_encode

_MISSING: Any = object()


def compact(header: dict[str, Any], payload: dict[str, Any], key: PrivateKey) -> str:
    signing_input = b64url_encode(orjson.dumps(header)) + "." + b64url_encode(orjson.dumps(payload))
    signature = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = b64url_encode(orjson.dumps(header)) + "." + b64url_encode(orjson.dumps(payload))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url_encode(mac)


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return b64url_encode(orjson.dumps(header)) + "." + b64url_encode(orjson.dumps(payload)) + "."


def service_auth_claims(
    iss: str, aud: str, lxm: str | None, /, *, lifetime: float = 60.0, **overrides: Any
) -> dict[str, Any]:
    now = int(clock.wall_now())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "exp": now + int(lifetime),
        "iat": now,
        "jti": secrets.token_hex(16),
    }
    if lxm is not None:
        claims["lxm"] = lxm
    for name, value in overrides.items():
        if value is _MISSING:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def service_auth(
    key: PrivateKey,
    iss: str,
    aud: str,
    lxm: str | None,
    /,
    *,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    hdr = {"typ": "JWT", "alg": JWT_ALG[key.curve]}
    hdr.update(header or {})
    return compact(hdr, service_auth_claims(iss, aud, lxm, **claims), key)


def public_jwk(key: PrivateKey) -> dict[str, str]:
    numbers = key.key.public_key().public_numbers()
    crv = "P-256" if isinstance(key.key.curve, ec.SECP256R1) else "secp256k1"
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    canonical = orjson.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, option=orjson.OPT_SORT_KEYS
    )
    return b64url_encode(hashlib.sha256(canonical).digest())


def access_token(
    key: PrivateKey,
    kid: str,
    *,
    iss: str,
    sub: str,
    aud: str,
    scope: str = "atproto transition:generic",
    jkt: str | None = None,
    lifetime: float = 300.0,
    header: dict[str, Any] | None = None,
    **overrides: Any,
) -> str:
    now = int(clock.wall_now())
    claims: dict[str, Any] = {
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "scope": scope,
        "iat": now,
        "exp": now + int(lifetime),
        "jti": secrets.token_hex(16),
    }
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    for name, value in overrides.items():
        if value is _MISSING:
            claims.pop(name, None)
        else:
            claims[name] = value
    hdr = {"typ": "at+jwt", "alg": JWT_ALG[key.curve], "kid": kid}
    hdr.update(header or {})
    return compact(hdr, claims, key)


def dpop_proof(
    key: PrivateKey,
    *,
    htm: str,
    htu: str,
    token: str | None,
    nonce: str | None = None,
    header: dict[str, Any] | None = None,
    **overrides: Any,
) -> str:
    claims: dict[str, Any] = {
        "htm": htm,
        "htu": htu,
        "iat": int(clock.wall_now()),
        "jti": secrets.token_hex(12),
    }
    if token is not None:
        claims["ath"] = b64url_encode(hashlib.sha256(token.encode()).digest())
    if nonce is not None and nonce is not _MISSING:
        claims["nonce"] = nonce
    for name, value in overrides.items():
        if value is _MISSING:
            claims.pop(name, None)
        else:
            claims[name] = value
    hdr: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)}
    hdr.update(header or {})
    return compact(hdr, claims, key)


MISSING = _MISSING
