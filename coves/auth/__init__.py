"""Authentication of XRPC callers (service-auth JWTs, OAuth access tokens)."""

from coves.auth.base import (
    Authenticator,
    AuthFailure,
    AuthInput,
    AuthMethod,
    AuthPolicy,
    NoCredentialsAccepted,
    Viewer,
)

__all__ = [
    "AuthFailure",
    "AuthInput",
    "AuthMethod",
    "AuthPolicy",
    "Authenticator",
    "NoCredentialsAccepted",
    "Viewer",
]
