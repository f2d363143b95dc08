"""Why an outbound fetch failed.

The tree mirrors httpx's so callers catch as broadly as they need::

    FetchError
    ├── NotAllowed        the URL itself is refused (scheme, credentials, port)
    │   └── BlockedAddress    it resolves to a private/loopback/reserved address
    ├── Unreachable       DNS or connection failure
    ├── FetchTimeout      connect/read/overall deadline passed
    ├── TooLarge          the body exceeded the size cap (reading stopped)
    ├── BadStatus         a non-2xx answer (redirects included: they are not followed)
    └── BadResponse       the body is not what the caller expected (e.g. not JSON)
"""

from __future__ import annotations


class FetchError(Exception):
    """Base class: the remote resource could not be fetched safely."""

    reason = "fetch_error"


class NotAllowed(FetchError):
    reason = "not_allowed"


class BlockedAddress(NotAllowed):
    reason = "blocked_address"


class Unreachable(FetchError):
    reason = "unreachable"


class FetchTimeout(FetchError):
    reason = "timeout"


class TooLarge(FetchError):
    reason = "too_large"


class BadStatus(FetchError):
    reason = "bad_status"

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"{url} answered HTTP {status}")
        self.status = status


class BadResponse(FetchError):
    reason = "bad_response"
