"""Requests carrying DPoP proofs, with the server-nonce dance (RFC 9449 §8, §9).

Servers hand out nonces in ``DPoP-Nonce`` headers and refuse proofs without
a current one (``use_dpop_nonce``: 400 from an authorization server, 401 with
``WWW-Authenticate: DPoP error="use_dpop_nonce"`` from a resource server).
The latest nonce per origin is remembered for every key (nonces belong to
the server, not to a session), so a request normally succeeds first time
and at most one retry follows a rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlencode, urlsplit

from coves.net import SafeFetcher
from coves.net.fetch import FetchResponse
from coves.oauth.jose import SigningKey, dpop_proof
from coves.ttlcache import ExpiringLRU

# Reference servers rotate nonces at most every 60 s and accept three windows.
NONCE_TTL = 120.0
RESPONSE_MAX_BYTES = 256 * 1024


def header(response: FetchResponse, name: str) -> str | None:
    lowered = name.lower()
    for key, value in response.headers.items():
        if key.lower() == lowered:
            return value
    return None


def wants_nonce(response: FetchResponse) -> bool:
    if response.status == 401:
        return "use_dpop_nonce" in (header(response, "www-authenticate") or "")
    if response.status == 400:
        try:
            body = response.json()
        except Exception:
            return False
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    return False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class DpopClient:
    def __init__(self, fetcher: SafeFetcher) -> None:
        self._fetcher = fetcher
        self._nonces: ExpiringLRU[str, str] = ExpiringLRU(10_000)

    def nonce_for(self, url: str) -> str | None:
        return self._nonces.get(_origin(url))

    def remember(self, url: str, nonce: str) -> None:
        """A ``DPoP-Nonce`` the server at ``url`` sent (any response may carry one)."""
        if nonce and len(nonce) <= 512:
            self._nonces.set(_origin(url), nonce, NONCE_TTL)

    async def request(
        self,
        method: str,
        url: str,
        key: SigningKey,
        *,
        access_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | Callable[[], bytes] | None = None,
        max_bytes: int = RESPONSE_MAX_BYTES,
    ) -> FetchResponse:
        """Send once, and once more if the server asks for a fresh nonce.

        ``content`` may be a function so that a retry gets a fresh body (a
        client assertion must not be sent twice: its ``jti`` is single-use).
        """
        origin = _origin(url)
        response: FetchResponse | None = None
        for _attempt in range(2):
            used = self._nonces.get(origin)
            sent = dict(headers or {})
            sent["DPoP"] = dpop_proof(key, method, url, nonce=used, access_token=access_token)
            if access_token is not None:
                sent["Authorization"] = f"DPoP {access_token}"
            body = content() if callable(content) else content
            response = await self._fetcher.send(
                method, url, headers=sent, content=body, max_bytes=max_bytes
            )
            fresh = header(response, "dpop-nonce")
            if fresh:
                self._nonces.set(origin, fresh, NONCE_TTL)
            if not (wants_nonce(response) and fresh and fresh != used):
                return response
        assert response is not None
        return response

    async def post_form(
        self, url: str, form: Callable[[], Mapping[str, str]], key: SigningKey
    ) -> FetchResponse:
        return await self.request(
            "POST",
            url,
            key,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            content=lambda: urlencode(form()).encode("ascii"),
        )
