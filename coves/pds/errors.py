"""What a PDS call can fail with, as the XRPC errors our clients see.

Every failure of a PDS call is one of these :class:`~coves.errors.XRPCError`
subclasses, so a handler that lets one escape answers a clear error with a
sensible status, never a 500. Callers that know better catch the class (and
look at ``pds_error``, the PDS's own error name) and raise their own, e.g.
``HandleNotAvailable`` from createAccount becomes our 409 ``NameTaken``.
"""

from __future__ import annotations

from collections.abc import Mapping

from coves.errors import XRPCError


class PdsError(XRPCError):
    """A PDS call failed. ``pds_status``/``pds_error``: what the PDS answered, if it did."""

    outcome = "error"  # the metrics label

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        pds_status: int | None = None,
        pds_error: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, error, message, headers=headers)
        self.pds_status = pds_status
        self.pds_error = pds_error


class PdsUnavailable(PdsError):
    """The PDS could not be reached, timed out, is overloaded or rate-limits us: 503."""

    outcome = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        pds_status: int | None = None,
        pds_error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
        super().__init__(
            503,
            "PdsUnavailable",
            message,
            pds_status=pds_status,
            pds_error=pds_error,
            headers=headers,
        )
        self.retry_after = retry_after


class PdsAuthError(PdsError):
    """The PDS refused our credentials (401, ``ExpiredToken``, ``InvalidToken``...).

    502 by default: for a community it means our stored session is unusable,
    a server-side problem. A user-session caller re-raises it as a 401.
    """

    outcome = "auth"

    def __init__(self, message: str, *, pds_status: int, pds_error: str | None) -> None:
        super().__init__(
            502, "UpstreamFailure", message, pds_status=pds_status, pds_error=pds_error
        )


class PdsConflict(PdsError):
    """A swap (``swapRecord``/``swapCommit``) did not match: someone wrote first. 409."""

    outcome = "conflict"

    def __init__(self, message: str, *, pds_status: int, pds_error: str | None) -> None:
        super().__init__(
            409, pds_error or "InvalidSwap", message, pds_status=pds_status, pds_error=pds_error
        )


class PdsNotFound(PdsError):
    """The record (or repo) does not exist on the PDS. 404."""

    outcome = "not_found"

    def __init__(self, message: str, *, pds_status: int, pds_error: str | None) -> None:
        super().__init__(
            404, pds_error or "RecordNotFound", message, pds_status=pds_status, pds_error=pds_error
        )


class PdsRejected(PdsError):
    """The PDS refused the request itself (400 with its error name, or another 4xx).

    A 400 keeps the PDS's error name (they are atproto's standard names) and
    message, so the client learns what was wrong; other refusals are 502.
    """

    outcome = "rejected"


class PdsBadResponse(PdsError):
    """The PDS answered something that is not what the method returns. 502."""

    outcome = "bad_response"

    def __init__(self, message: str, *, pds_status: int | None = None) -> None:
        super().__init__(502, "UpstreamFailure", message, pds_status=pds_status)


AUTH_ERRORS = frozenset(
    {"ExpiredToken", "InvalidToken", "AuthMissing", "AuthenticationRequired", "BadJwt"}
)
CONFLICT_ERRORS = frozenset({"InvalidSwap"})
NOT_FOUND_ERRORS = frozenset({"RecordNotFound", "RepoNotFound", "BlobNotFound"})


def error_for_status(
    nsid: str,
    status: int,
    pds_error: str | None,
    pds_message: str | None,
    *,
    retry_after: float | None = None,
) -> PdsError:
    """The error for a PDS answer with a failure status (after any retries)."""
    detail = f"{pds_error}: {pds_message}" if pds_message else (pds_error or f"HTTP {status}")
    where = f"PDS {nsid}"
    if status in (502, 503, 504) or status == 429:
        what = "rate-limits us" if status == 429 else "is unavailable"
        return PdsUnavailable(
            f"{where} {what} ({detail})",
            pds_status=status,
            pds_error=pds_error,
            retry_after=retry_after,
        )
    if status >= 500:
        return PdsError(
            502,
            "UpstreamFailure",
            f"{where} failed ({detail})",
            pds_status=status,
            pds_error=pds_error,
        )
    if status == 401 or pds_error in AUTH_ERRORS:
        return PdsAuthError(
            f"{where} refused the credentials ({detail})", pds_status=status, pds_error=pds_error
        )
    if pds_error in CONFLICT_ERRORS or status == 409:
        return PdsConflict(f"{where}: {detail}", pds_status=status, pds_error=pds_error)
    if pds_error in NOT_FOUND_ERRORS or status == 404:
        return PdsNotFound(f"{where}: {detail}", pds_status=status, pds_error=pds_error)
    if status == 413:
        return PdsRejected(
            413, "PayloadTooLarge", f"{where}: {detail}", pds_status=status, pds_error=pds_error
        )
    if status == 400:
        return PdsRejected(
            400,
            pds_error or "InvalidRequest",
            f"{where}: {pds_message or pds_error or 'bad request'}",
            pds_status=status,
            pds_error=pds_error,
        )
    return PdsRejected(
        502,
        "UpstreamFailure",
        f"{where} refused ({detail})",
        pds_status=status,
        pds_error=pds_error,
    )
