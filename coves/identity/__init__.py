"""Resolving atproto identities: DID documents, handles, and their caches."""

from coves.identity.document import DidDocument
from coves.identity.errors import (
    BadDocument,
    IdentityError,
    InvalidIdentifier,
    NotFound,
    ResolutionFailed,
    UnsupportedMethod,
)
from coves.identity.resolver import Identity, IdentityResolver

__all__ = [
    "BadDocument",
    "DidDocument",
    "Identity",
    "IdentityError",
    "IdentityResolver",
    "InvalidIdentifier",
    "NotFound",
    "ResolutionFailed",
    "UnsupportedMethod",
]
