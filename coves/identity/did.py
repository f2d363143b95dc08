"""Fetching DID documents: did:plc from the PLC directory, did:web from its host."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from coves.atproto.syntax import is_valid_did, is_valid_hostname
from coves.identity.errors import InvalidIdentifier, NotFound, ResolutionFailed, UnsupportedMethod
from coves.net import BadStatus, FetchError, SafeFetcher

PLC_RE = re.compile(r"^did:plc:[a-z2-7]{24}$")
DOC_MAX_BYTES = 64 * 1024
DID_ACCEPT = "application/did+ld+json, application/json"


def did_web_host(did: str) -> str:
    """The host (with ``:port`` for localhost) a did:web names.

    Path-based did:web (extra ``:`` segments) is unsupported by atproto; a
    port (``%3A``) is only meaningful for localhost.
    """
    if not did.startswith("did:web:"):
        raise UnsupportedMethod("not a did:web")
    rest = did.removeprefix("did:web:")
    if ":" in rest:
        raise UnsupportedMethod("path-based did:web is not supported")
    host = rest.replace("%3A", ":").replace("%3a", ":").lower()
    name, _, port = host.partition(":")
    if port and (name != "localhost" or not port.isdigit()):
        raise InvalidIdentifier("a did:web port is only allowed for localhost")
    if not is_valid_hostname(name):
        raise InvalidIdentifier("did:web host is not a valid hostname")
    return host


def did_web_url(did: str) -> str:
    host = did_web_host(did)
    scheme = "http" if host.startswith("localhost:") else "https"
    return f"{scheme}://{host}/.well-known/did.json"


class DidFetcher:
    """Downloads raw DID documents (parsing is ``coves.identity.document``)."""

    def __init__(self, fetcher: SafeFetcher, plc_url: str) -> None:
        self._fetcher = fetcher
        self._plc_url = plc_url.rstrip("/")

    def url_for(self, did: str) -> str:
        if not is_valid_did(did):
            raise InvalidIdentifier("not a valid DID")
        if did.startswith("did:plc:"):
            if not PLC_RE.fullmatch(did):
                raise InvalidIdentifier("not a valid did:plc")
            return f"{self._plc_url}/{quote(did, safe=':')}"
        if did.startswith("did:web:"):
            return did_web_url(did)
        raise UnsupportedMethod(f"unsupported DID method: {did.split(':')[1]}")

    async def fetch(self, did: str) -> Any:
        url = self.url_for(did)
        try:
            response = await self._fetcher.get(url, accept=DID_ACCEPT, max_bytes=DOC_MAX_BYTES)
            return response.json()
        except BadStatus as exc:
            if exc.status in (404, 410):
                raise NotFound(f"{did} is not registered or was tombstoned") from None
            raise ResolutionFailed(f"DID document fetch failed: HTTP {exc.status}") from None
        except FetchError as exc:
            raise ResolutionFailed(f"DID document fetch failed: {exc.reason}") from None
