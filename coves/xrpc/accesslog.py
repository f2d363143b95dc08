"""The access log: one structured line per request, on the ``coves.access`` logger.

Fields: ``method``, ``nsid`` (XRPC calls) or ``path`` (everything else),
``status``, ``duration_ms``, ``bytes``, ``request_id``, ``client`` (the
address the trusted-proxy rules give, the same one rate limits use) and
``viewer`` when the call was authenticated. Query strings are never logged:
they can carry what users typed.

Busy instances sample: ``ACCESS_LOG_SAMPLE_RATE`` is the share of requests
below 500 that are written; server errors are always written, since they are
the lines an operator goes looking for. The decision costs one random draw,
and nothing is built for a request that is not logged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from coves.logs import redact_text, write_line
from coves.xrpc.ratelimit import Network, client_address

LOGGER_NAME = "coves.access"
_MAX_TARGET = 200  # paths and NSIDs are client-chosen: keep a line bounded


class AccessLog:
    def __init__(
        self,
        *,
        sample_rate: float,
        trusted_proxies: Sequence[Network],
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._rate = sample_rate
        self._trusted = tuple(trusted_proxies)
        self._rng = rng
        self._std = logging.getLogger(LOGGER_NAME)

    def wanted(self, status: int) -> bool:
        """Whether this response gets a line (checked before anything is built)."""
        if not self._std.isEnabledFor(logging.INFO):
            return False
        return status >= 500 or (self._rate > 0 and (self._rate >= 1 or self._rng() < self._rate))

    def write(
        self,
        *,
        method: str,
        status: int,
        duration_s: float,
        size: int,
        peer: str | None,
        header: Callable[[str], str | None],
        nsid: str | None = None,
        path: str | None = None,
        request_id: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "method": method[:16],
            "status": status,
            "duration_ms": round(duration_s * 1000, 2),
            "bytes": size,
            "client": client_address(peer, header, self._trusted),
        }
        # The line skips the structlog chain (see write_line): what the client chose
        # (the target, its request id) is redacted here, the rest is ours.
        if nsid is not None:
            fields["nsid"] = redact_text(nsid[:_MAX_TARGET])
        if path is not None:
            fields["path"] = redact_text(path[:_MAX_TARGET])
        if request_id is not None:
            fields["request_id"] = redact_text(request_id)
        viewer = structlog.contextvars.get_contextvars().get("viewer")
        if viewer is not None:
            fields["viewer"] = viewer
        write_line(LOGGER_NAME, "request", fields)


def build_access_log(
    enabled: bool, sample_rate: float, trusted_proxies: Sequence[Network]
) -> AccessLog | None:
    if not enabled:
        return None
    return AccessLog(sample_rate=sample_rate, trusted_proxies=trusted_proxies)
