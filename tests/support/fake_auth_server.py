"""A fake atproto authorization server, for fault injection only.

Speaks the real wire format (RFC 8414 metadata, RFC 9449 DPoP with server
nonces, RFC 6749 token errors) through ``httpx.MockTransport`` routes of a
:class:`FakeNetwork`. The happy path is tested against the reference PDS;
this exists to make the authorization server refuse a refresh token, fail,
or count how many refreshes it was asked for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from coves.auth.jwt import parse_jwt
from tests.support.fake_did import FakeNetwork


@dataclass
class FakeAuthServer:
    issuer: str = "https://pds.test"
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    refresh_status: str = "ok"  # ok | invalid_grant | down
    refreshes: list[dict[str, str]] = field(default_factory=list)
    revocations: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    sub: str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"

    def metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "pushed_authorization_request_endpoint": f"{base}/oauth/par",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "authorization_response_iss_parameter_supported": True,
            "require_pushed_authorization_requests": True,
            "client_id_metadata_document_supported": True,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["atproto", "transition:generic"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        }

    def install(self, net: FakeNetwork) -> None:
        base = self.issuer
        net.routes[f"{base}/.well-known/oauth-authorization-server"] = lambda r: httpx.Response(
            200, json=self.metadata()
        )
        net.routes[f"{base}/oauth/token"] = self._token
        net.routes[f"{base}/oauth/revoke"] = self._revoke

    def _nonce_ok(self, request: httpx.Request) -> bool:
        proof = request.headers.get("dpop")
        if not proof:
            return False
        return parse_jwt(proof).payload.get("nonce") == self.nonce

    def _use_nonce(self) -> httpx.Response:
        return httpx.Response(
            400,
            json={"error": "use_dpop_nonce", "error_description": "nonce required"},
            headers={"DPoP-Nonce": self.nonce},
        )

    def _token(self, request: httpx.Request) -> httpx.Response:
        if not self._nonce_ok(request):
            return self._use_nonce()
        form = dict(parse_qsl(request.content.decode()))
        if form.get("grant_type") != "refresh_token":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        self.refreshes.append(form)
        if self.refresh_status == "down":
            return httpx.Response(503, text="upstream down")
        if self.refresh_status == "invalid_grant":
            return httpx.Response(
                400, json={"error": "invalid_grant", "error_description": "token revoked"}
            )
        access = secrets.token_urlsafe(24)
        self.issued.append(access)
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "token_type": "DPoP",
                "refresh_token": secrets.token_urlsafe(24),
                "expires_in": 3600,
                "scope": "atproto",
                "sub": self.sub,
            },
            headers={"DPoP-Nonce": self.nonce},
        )

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        if not self._nonce_ok(request):
            return self._use_nonce()
        form = dict(parse_qsl(request.content.decode()))
        self.revocations.append(form.get("token", ""))
        return httpx.Response(200, json={})
