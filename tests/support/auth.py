"""A fake authenticator: ``Authorization: Bearer test:<did>`` is that viewer.

Stands in for the identity workstream's real verifiers in route tests; any
other credential is rejected as a real authenticator would.
"""

from __future__ import annotations

from coves.auth.base import AuthFailure, AuthInput, Viewer

PREFIX = "Bearer test:"


def auth_header(did: str) -> dict[str, str]:
    return {"Authorization": f"{PREFIX}{did}"}


class FakeAuthenticator:
    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        if not header.startswith(PREFIX) or not header[len(PREFIX) :].startswith("did:"):
            raise AuthFailure("bad_token", "Invalid or expired token")
        return Viewer(did=header[len(PREFIX) :], method="service_auth")
