"""Talking to PDSes: one client, pluggable auth, writes indexed as they are made.

- :mod:`coves.pds.client`: every XRPC call to a PDS (timeouts, bounded retries
  of idempotent calls, errors mapped to ours, metrics per method).
- :mod:`coves.pds.auth`: the authentication strategy interface (bearer
  sessions, admin basic auth; DPoP-bound OAuth tokens plug in here).
- :mod:`coves.pds.errors`: what a call fails with (503 ``PdsUnavailable`` when
  the PDS is down, never a 500).
- :mod:`coves.pds.writes`: a record write followed at once by the same
  rev-gated indexing the stream uses (read-your-writes, echo-safe).
"""

from coves.pds.auth import AdminAuth, BearerAuth, NoAuth, PdsAuth
from coves.pds.client import PdsClient, PdsConnections, PdsLimits, PdsSession, RecordRef
from coves.pds.errors import (
    PdsAuthError,
    PdsBadResponse,
    PdsConflict,
    PdsError,
    PdsNotFound,
    PdsRejected,
    PdsUnavailable,
)
from coves.pds.writes import RepoWriter, Written

__all__ = [
    "AdminAuth",
    "BearerAuth",
    "NoAuth",
    "PdsAuth",
    "PdsAuthError",
    "PdsBadResponse",
    "PdsClient",
    "PdsConflict",
    "PdsConnections",
    "PdsError",
    "PdsLimits",
    "PdsNotFound",
    "PdsRejected",
    "PdsSession",
    "PdsUnavailable",
    "RecordRef",
    "RepoWriter",
    "Written",
]
