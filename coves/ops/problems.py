"""Failures an operator's command reports in one line instead of a traceback."""

from __future__ import annotations

from coves.db import DatabaseError
from coves.db.embedded import EmbeddedPostgresError
from coves.excgroups import first_leaf
from coves.ops.backup import BackupError
from coves.ops.pgtools import PgToolError

OPERATOR_ERRORS = (BackupError, PgToolError, DatabaseError, EmbeddedPostgresError, OSError)


def operator_problem(exc: BaseException) -> str | None:
    """The message of the first operator-actionable error inside ``exc``, else None."""
    found = first_leaf(exc, OPERATOR_ERRORS)
    return None if found is None else str(found)
