"""Failures an operator's command reports in one line instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from coves.db import DatabaseError
from coves.db.embedded import EmbeddedPostgresError
from coves.excgroups import first_leaf
from coves.ops.backup import BackupError
from coves.ops.pgtools import PgToolError

T = TypeVar("T")

OPERATOR_ERRORS = (BackupError, PgToolError, DatabaseError, EmbeddedPostgresError, OSError)


def operator_problem(exc: BaseException) -> str | None:
    """The message of the first operator-actionable error inside ``exc``, else None."""
    found = first_leaf(exc, OPERATOR_ERRORS)
    return None if found is None else str(found)


class CommandFailed(Exception):
    """An operator's command failed and has said why in one line: exit status 1."""


def run_command(command: str, main: Callable[[], Awaitable[T]]) -> T:
    """``trio.run(main)`` for ``coves <command>``: an operator-actionable failure is
    printed as one line and :class:`CommandFailed` raised (``coves`` exits with status
    1); anything else (a bug) keeps its traceback."""
    try:
        return trio.run(main)
    except BaseException as exc:
        problem = operator_problem(exc)
        if problem is None:
            raise
        print(f"coves {command}: {problem}", file=sys.stderr)
        raise CommandFailed(problem) from None
