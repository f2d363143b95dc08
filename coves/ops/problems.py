"""Failures an operator's command reports in one line instead of a traceback."""

from __future__ import annotations

from coves.db import DatabaseError
from coves.db.embedded import EmbeddedPostgresError
from coves.ops.backup import BackupError
from coves.ops.pgtools import PgToolError

OPERATOR_ERRORS = (BackupError, PgToolError, DatabaseError, EmbeddedPostgresError, OSError)


def operator_problem(exc: BaseException) -> str | None:
    """The message of the first operator-actionable error inside ``exc``, else None."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = operator_problem(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, OPERATOR_ERRORS):
        return str(exc)
    return None
