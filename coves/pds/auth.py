"""How a PDS call is authenticated: one small strategy interface.

The client (:mod:`coves.pds.client`) knows nothing about tokens. Before each
attempt it asks the strategy to :meth:`PdsAuth.authorize` the request (set
headers: it sees the final method and URL, which a DPoP proof signs), and
after every response it hands the response to :meth:`PdsAuth.on_response`,
which may ask for the request to be authorized again and re-sent.

- :class:`NoAuth`: createAccount, createSession, describeServer, getRecord.
- :class:`BearerAuth`: a fixed ``Authorization: Bearer <jwt>`` (a refresh JWT
  for refreshSession; a one-off access JWT).
- :class:`AdminAuth`: HTTP basic ``admin:<PDS admin password>`` (createInviteCode).
- Community sessions (``coves.communities_write.sessions``): a Bearer access JWT that is
  refreshed before it expires and once more when the PDS answers 401 /
  ``ExpiredToken``.
- User OAuth sessions (the OAuth client): ``Authorization: DPoP <token>`` plus a
  ``DPoP`` proof; ``on_response`` stores every ``DPoP-Nonce`` the PDS sends and
  asks for a retry on ``use_dpop_nonce`` (401 with ``WWW-Authenticate: DPoP
  error="use_dpop_nonce"``).

A re-send after ``on_response`` returns True is safe for non-idempotent calls
(createRecord): a PDS checks credentials before it does anything. The client
re-sends at most :data:`MAX_AUTH_RETRIES` times per call.
"""

from __future__ import annotations

import base64
from typing import Protocol

import httpx

from coves.secrets import Secret

MAX_AUTH_RETRIES = 2


class PdsAuth(Protocol):
    """The authentication strategy of one PDS call (see the module docstring)."""

    async def authorize(self, request: httpx.Request) -> None:
        """Set the request's credential headers (called before every attempt)."""
        ...

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        """See every response (``error``: the XRPC error name, if any); True = re-send."""
        ...


class NoAuth:
    async def authorize(self, request: httpx.Request) -> None:
        return None

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        return False


class BearerAuth:
    """A fixed bearer token; never retries (nothing to renew)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth('***')"

    async def authorize(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {self._token}"

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        return False


class AdminAuth:
    """The PDS admin's basic auth, for admin-only methods such as createInviteCode."""

    def __init__(self, password: Secret) -> None:
        self._password = password

    async def authorize(self, request: httpx.Request) -> None:
        raw = f"admin:{self._password.reveal()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        return False
