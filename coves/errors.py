"""The one error type every XRPC failure is expressed as.

Handlers, validators and middleware raise :class:`XRPCError`; the app turns
it into ``{"error": Name, "message": text}`` with the status it carries.
Anything else that escapes a handler is a bug and becomes a 500 with no
internal detail (see ``coves.xrpc.app``).
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_NAMES: Mapping[int, str] = {
    400: "InvalidRequest",
    401: "AuthenticationRequired",
    403: "Forbidden",
    404: "NotFound",
    405: "InvalidRequest",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "RateLimitExceeded",
    500: "InternalServerError",
    501: "MethodNotImplemented",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}


class XRPCError(Exception):
    """An error with an XRPC name, a human message and an HTTP status."""

    def __init__(
        self,
        status: int,
        error: str | None = None,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error = error or DEFAULT_NAMES.get(status, "InternalServerError")
        self.message = message or self.error
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} {self.error}: {self.message}")

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


def invalid_request(message: str, error: str = "InvalidRequest") -> XRPCError:
    return XRPCError(400, error, message)


def not_found(message: str, error: str = "NotFound") -> XRPCError:
    return XRPCError(404, error, message)
