"""EC JSON Web Keys: public P-256 / secp256k1 keys and RFC 7638 thumbprints."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from coves.atproto.keys import Curve, PublicKey
from coves.base64url import b64url_decode, b64url_encode

_CURVES: dict[str, tuple[Curve, ec.EllipticCurve]] = {
    "P-256": ("p256", ec.SECP256R1()),
    "secp256k1": ("k256", ec.SECP256K1()),
}


class JWKError(ValueError):
    pass


def public_key_from_jwk(jwk: Any) -> PublicKey:
    """An EC public key from a JWK; private keys (a ``d`` member) are refused."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC":
        raise JWKError("only EC keys are supported")
    if "d" in jwk:
        raise JWKError("a private key was sent where a public key belongs")
    curve = _CURVES.get(str(jwk.get("crv")))
    if curve is None:
        raise JWKError("unsupported curve")
    try:
        x = b64url_decode(str(jwk.get("x")))
        y = b64url_decode(str(jwk.get("y")))
    except ValueError:
        raise JWKError("bad coordinates") from None
    if len(x) != 32 or len(y) != 32:
        raise JWKError("bad coordinate length")
    try:
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve[1]
        )
        return PublicKey(curve[0], numbers.public_key())
    except ValueError:
        raise JWKError("point is not on the curve") from None


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an EC JWK (required members, sorted, no spaces)."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = orjson.dumps(members, option=orjson.OPT_SORT_KEYS)
    return b64url_encode(hashlib.sha256(canonical).digest())
