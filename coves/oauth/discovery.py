"""From a handle or DID to the authorization server that may sign it in.

handle → DID (bidirectionally verified by the identity layer) → the DID
document's PDS → the PDS's protected-resource metadata → its authorization
server → that server's metadata. Every fetch goes through the safe fetcher;
every document is checked against what the atproto OAuth profile requires
before anything is sent to the server it names. Results are cached briefly
(the spec asks for less than ten minutes in auth flows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from coves.identity import (
    BadDocument,
    IdentityError,
    InvalidIdentifier,
    NotFound,
    UnsupportedMethod,
)
from coves.identity.resolver import Identity, IdentityResolver
from coves.net import FetchError, FetchTimeout, SafeFetcher, Unreachable
from coves.oauth.errors import OAuthError, bad_identity, unavailable, upstream
from coves.ttlcache import ExpiringLRU

CACHE_SECONDS = 300.0
METADATA_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class AuthServer:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    par_endpoint: str
    revocation_endpoint: str | None


def origin_of(url: str, *, allow_http: bool) -> str | None:
    """``scheme://host[:port]`` when ``url`` is a bare origin we may talk to, else None."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _endpoint(doc: dict[str, Any], name: str, *, allow_http: bool) -> str:
    value = doc.get(name)
    parts = urlsplit(value) if isinstance(value, str) else None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts is None or parts.scheme not in schemes or not parts.hostname or parts.fragment:
        raise upstream(f"authorization server metadata has no usable {name}")
    assert isinstance(value, str)
    return value


def parse_auth_server(doc: Any, issuer: str, *, allow_http: bool) -> AuthServer:
    """Check authorization-server metadata against the atproto OAuth profile."""
    if not isinstance(doc, dict):
        raise upstream("authorization server metadata is not a JSON object")
    if doc.get("issuer") != issuer:
        raise upstream("authorization server metadata names another issuer")
    checks = (
        ("authorization_response_iss_parameter_supported", True),
        ("require_pushed_authorization_requests", True),
        ("client_id_metadata_document_supported", True),
    )
    for name, expected in checks:
        if doc.get(name) is not expected:
            raise upstream(f"authorization server does not support {name}")
    for name, needed in (
        ("response_types_supported", "code"),
        ("grant_types_supported", "authorization_code"),
        ("grant_types_supported", "refresh_token"),
        ("code_challenge_methods_supported", "S256"),
        ("dpop_signing_alg_values_supported", "ES256"),
        ("scopes_supported", "atproto"),
    ):
        values = doc.get(name)
        if not isinstance(values, list) or needed not in values:
            raise upstream(f"authorization server metadata lacks {needed} in {name}")
    revocation = doc.get("revocation_endpoint")
    return AuthServer(
        issuer=issuer,
        authorization_endpoint=_endpoint(doc, "authorization_endpoint", allow_http=allow_http),
        token_endpoint=_endpoint(doc, "token_endpoint", allow_http=allow_http),
        par_endpoint=_endpoint(doc, "pushed_authorization_request_endpoint", allow_http=allow_http),
        revocation_endpoint=(
            _endpoint(doc, "revocation_endpoint", allow_http=allow_http)
            if revocation is not None
            else None
        ),
    )


def _fetch_failure(what: str, exc: FetchError) -> OAuthError:
    if isinstance(exc, FetchTimeout | Unreachable):
        return unavailable(f"{what} is unreachable; try again later")
    return upstream(f"{what} could not be fetched ({exc.reason})")


class Discovery:
    def __init__(
        self, fetcher: SafeFetcher, identity: IdentityResolver, *, allow_http: bool
    ) -> None:
        self._fetcher = fetcher
        self._identity = identity
        self.allow_http = allow_http
        self._issuers: ExpiringLRU[str, str] = ExpiringLRU(10_000)
        self._servers: ExpiringLRU[str, AuthServer] = ExpiringLRU(1_000)

    async def identity(self, actor: str, *, force_refresh: bool = False) -> Identity:
        """A handle or DID to a verified identity with a PDS."""
        try:
            if actor.startswith("did:"):
                found = await self._identity.identity(actor, force_refresh=force_refresh)
            else:
                found = await self._identity.resolve_actor(actor)
        except (NotFound, BadDocument, InvalidIdentifier, UnsupportedMethod) as exc:
            raise bad_identity(f"could not resolve {actor!r}: {exc}") from None
        except IdentityError:
            raise unavailable(f"could not resolve {actor!r} right now; try again later") from None
        if found.pds_url is None:
            raise bad_identity(f"{actor!r} has no PDS in its DID document")
        return found

    async def issuer_for_pds(self, pds_url: str) -> str:
        """The authorization server a PDS names in its protected-resource metadata."""
        pds = origin_of(pds_url, allow_http=self.allow_http)
        if pds is None:
            raise bad_identity("the account's PDS URL is not an https origin")
        cached = self._issuers.get(pds)
        if cached is not None:
            return cached
        try:
            doc = await self._fetcher.get_json(
                pds + "/.well-known/oauth-protected-resource", max_bytes=METADATA_MAX_BYTES
            )
        except FetchError as exc:
            raise _fetch_failure("the account's PDS", exc) from None
        if not isinstance(doc, dict):
            raise upstream("protected-resource metadata is not a JSON object")
        if doc.get("resource") not in (pds, pds + "/"):
            raise upstream("protected-resource metadata is for another resource")
        servers = doc.get("authorization_servers")
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
            raise upstream("the PDS names no authorization server")
        issuer = origin_of(servers[0], allow_http=self.allow_http)
        if issuer is None:
            raise upstream("the PDS names an authorization server that is not an https origin")
        self._issuers.set(pds, issuer, CACHE_SECONDS)
        return issuer

    async def auth_server(self, issuer: str) -> AuthServer:
        cached = self._servers.get(issuer)
        if cached is not None:
            return cached
        if origin_of(issuer, allow_http=self.allow_http) != issuer:
            raise upstream("authorization server issuer is not an https origin")
        try:
            doc = await self._fetcher.get_json(
                issuer + "/.well-known/oauth-authorization-server", max_bytes=METADATA_MAX_BYTES
            )
        except FetchError as exc:
            raise _fetch_failure("the authorization server", exc) from None
        server = parse_auth_server(doc, issuer, allow_http=self.allow_http)
        self._servers.set(issuer, server, CACHE_SECONDS)
        return server
