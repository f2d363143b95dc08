"""What can go wrong in the OAuth client, as XRPC errors the routes can render."""

from __future__ import annotations

from coves.errors import XRPCError


class OAuthError(XRPCError):
    """A failure of the sign-in flow or of a user session, with its HTTP status."""


def bad_identity(message: str) -> OAuthError:
    return OAuthError(400, "InvalidIdentity", message)


def upstream(message: str) -> OAuthError:
    """The user's PDS or authorization server answered something unusable."""
    return OAuthError(502, "UpstreamFailure", message)


def unavailable(message: str) -> OAuthError:
    return OAuthError(503, "AuthServerUnavailable", message)


def session_expired(message: str = "") -> OAuthError:
    return OAuthError(
        401,
        "SessionExpired",
        message or "your session has ended or was revoked; sign in again",
        headers={"WWW-Authenticate": 'Bearer realm="coves", error="invalid_token"'},
    )
