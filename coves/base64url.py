"""base64url without padding (RFC 4648 §5, RFC 7515 §2): JWS parts, JWK coordinates,
DPoP and PKCE hashes, session tokens and feed cursors all use this one form.

Decoding is strict: only the URL-safe alphabet, no padding, no whitespace, so a
value has one spelling and anything else is refused (ValueError) instead of
being silently cleaned up, as the standard library's decoder would.
"""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes ``text`` encodes; ValueError when it is not unpadded base64url."""
    if not _ALPHABET.fullmatch(text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
