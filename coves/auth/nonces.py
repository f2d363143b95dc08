"""Server-issued DPoP nonces without server state.

A nonce is an HMAC of the current time window, so every process sharing the
secret issues and accepts the same values and nothing needs storing. The
previous, current and next windows are accepted so a nonce stays usable
across one rotation and small clock differences between processes.
"""

from __future__ import annotations

import hashlib
import hmac

from coves import clock
from coves.base64url import b64url_encode
from coves.secrets import equal_in_constant_time


class DpopNonces:
    def __init__(self, secret: bytes, rotation: float = 60.0) -> None:
        if len(secret) < 16:
            raise ValueError("nonce secret must be at least 16 bytes")
        self._secret = secret
        self.rotation = rotation

    def _window(self) -> int:
        return int(clock.wall_now() // self.rotation)

    def _for(self, window: int) -> str:
        mac = hmac.new(self._secret, f"dpop-nonce:{window}".encode(), hashlib.sha256)
        return b64url_encode(mac.digest()[:18])

    def current(self) -> str:
        return self._for(self._window())

    def is_valid(self, nonce: object) -> bool:
        if not isinstance(nonce, str):
            return False
        window = self._window()
        return any(
            equal_in_constant_time(nonce, self._for(w)) for w in (window - 1, window, window + 1)
        )
