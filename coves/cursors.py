"""Opaque, signed pagination cursors.

A cursor is ``base64url(json payload) + "." + base64url(HMAC-SHA256)[:16 bytes]``
keyed with ``CURSOR_SECRET``. Clients cannot forge or edit one (so a cursor
can safely carry offsets and snapshot ids), and any malformed or tampered
cursor is a 400 ``InvalidCursor``, never a 500.

Each cursor names its ``kind`` (the listing it belongs to), so a cursor from
one endpoint or sort cannot be replayed against another.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from coves.base64url import b64url_decode, b64url_encode
from coves.errors import XRPCError
from coves.secrets import Secret, equal_in_constant_time

MAX_CURSOR_LENGTH = 2048
_MAC_BYTES = 16


def invalid_cursor(message: str = "cursor is not valid") -> XRPCError:
    return XRPCError(400, "InvalidCursor", message)


class CursorCodec:
    def __init__(self, secret: Secret) -> None:
        self._key = hashlib.sha256(b"coves-cursor:" + secret.reveal().encode()).digest()

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return b64url_encode(digest[:_MAC_BYTES])

    def encode(self, kind: str, payload: dict[str, Any]) -> str:
        body = b64url_encode(orjson.dumps({"k": kind, **payload}))
        return f"{body}.{self._mac(body)}"

    def decode(self, kind: str, cursor: str) -> dict[str, Any]:
        """Verify and open a cursor of ``kind``; raise ``InvalidCursor`` otherwise."""
        if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
            raise invalid_cursor()
        body, _, mac = cursor.partition(".")
        if not body or not mac or not equal_in_constant_time(mac, self._mac(body)):
            raise invalid_cursor()
        try:
            payload = orjson.loads(b64url_decode(body))
        except (ValueError, orjson.JSONDecodeError):
            raise invalid_cursor() from None
        if not isinstance(payload, dict) or payload.pop("k", None) != kind:
            raise invalid_cursor("cursor belongs to a different listing")
        return payload
