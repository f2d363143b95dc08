"""What route handlers see of authentication, and what an authenticator must do.

Routes declare a policy; the XRPC dispatcher asks the app's
:class:`Authenticator` for a :class:`Viewer` and turns an
:class:`AuthFailure` into 401 ``AuthenticationRequired``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

AuthMethod = Literal["service_auth", "oauth", "oauth_dpop", "session", "unverified", "api_key"]


class AuthPolicy(StrEnum):
    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller."""

    did: str
    method: AuthMethod
    scopes: tuple[str, ...] = ()
    # The nonce a DPoP client should put in its next proof (RFC 9449 §8.2),
    # sent back on the successful response so it never has to be refused
    # with use_dpop_nonce once its nonce ages out.
    dpop_nonce: str | None = None
    # Set when the caller signed in through Coves (a sealed session token):
    # the session whose DPoP-bound tokens write into the caller's repo.
    session_id: str | None = None
    # Rate-limit classes this credential is charged to, each with its key, e.g.
    # (("api_key", "<key id>"),): the dispatcher counts them in the shared
    # RateLimiter, so every worker process draws on one budget.
    limits: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AuthInput:
    """The parts of a request an authenticator may look at."""

    http_method: str
    url: str  # scheme://host/path as the client addressed it (no query)
    nsid: str
    headers: Mapping[str, str]  # lower-cased names


@dataclass
class AuthFailure(Exception):
    """Credentials were presented (or required) and are not acceptable."""

    reason: str  # short, metric-friendly: missing, expired, bad_signature, ...
    message: str
    www_authenticate: str = 'Bearer realm="coves"'
    headers: dict[str, str] = field(default_factory=dict)
    # A cross-site request with a session cookie is refused as 403, not 401.
    status: int = 401
    error: str = "AuthenticationRequired"

    def __post_init__(self) -> None:
        super().__init__(self.message)


class Authenticator(Protocol):
    async def authenticate(self, request: AuthInput) -> Viewer | None:
        """Return the viewer, ``None`` when no credentials were sent, or raise AuthFailure."""
        ...


class NoCredentialsAccepted:
    """Authenticator used until real verifiers are configured: anonymous only."""

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        if request.headers.get("authorization"):
            raise AuthFailure("unsupported", "this server cannot verify credentials")
        return None
