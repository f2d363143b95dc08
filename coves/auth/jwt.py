"""Compact JWS parsing, done by hand on purpose.

atproto signatures are raw r||s (not DER) and ES256K is outside most JWT
libraries' defaults, so verification goes through ``coves.atproto.keys``;
this module only splits and decodes, strictly (no whitespace, no padding,
JSON objects only), and never trusts ``alg`` to pick a verifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from coves.auth.base import AuthFailure
from coves.base64url import b64url_decode

MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True)
class CompactJWT:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def typ(self) -> str | None:
        value = self.header.get("typ")
        return value if isinstance(value, str) else None

    @property
    def alg(self) -> str | None:
        value = self.header.get("alg")
        return value if isinstance(value, str) else None


def parse_jwt(token: str, *, what: str = "token") -> CompactJWT:
    """Split and decode a compact JWS; AuthFailure("malformed") on anything odd."""
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthFailure("malformed", f"{what} is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthFailure("malformed", f"{what} is not a compact JWT")
    try:
        header = orjson.loads(b64url_decode(parts[0]))
        payload = orjson.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, orjson.JSONDecodeError):
        raise AuthFailure("malformed", f"{what} is not a valid JWT") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AuthFailure("malformed", f"{what} header and payload must be JSON objects")
    return CompactJWT(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def number_claim(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
