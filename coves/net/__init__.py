"""Safe outbound HTTP for fetching user-controlled URLs (DID documents, handles, JWKS)."""

from coves.net.errors import (
    BadResponse,
    BadStatus,
    BlockedAddress,
    FetchError,
    FetchTimeout,
    NotAllowed,
    TooLarge,
    Unreachable,
)
from coves.net.fetch import FetchResponse, SafeFetcher

__all__ = [
    "BadResponse",
    "BadStatus",
    "BlockedAddress",
    "FetchError",
    "FetchResponse",
    "FetchTimeout",
    "NotAllowed",
    "SafeFetcher",
    "TooLarge",
    "Unreachable",
]
