"""The one way a part of Coves says "I cannot start as configured, and retrying won't help".

The supervisor does not restart a child that raises :class:`RefusedToStart`
(a port in use, a data directory owned by a running Coves, a schema or keys
that do not fit): the process stops at once and ``coves`` prints the reason
in one line (exit status 2) instead of five retried tracebacks.
"""

from __future__ import annotations

from coves.excgroups import first_leaf


class RefusedToStart(Exception):
    """Coves cannot serve as configured; the message says why, in one line."""


def find_refusal(exc: BaseException) -> RefusedToStart | None:
    """The refusal inside ``exc`` (possibly nested in exception groups), if any."""
    return first_leaf(exc, RefusedToStart)
