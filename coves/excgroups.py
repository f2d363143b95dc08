"""Finding one failure inside the exception groups Trio's nurseries raise.

A child's error reaches the top wrapped in as many groups as nurseries it
crossed; deciding how to report it (a refusal to start, a port in use, an
operator's mistake) means finding the first leaf of a kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

E = TypeVar("E", bound=BaseException)


def first_leaf(
    exc: BaseException,
    kind: type[E] | tuple[type[E], ...],
    where: Callable[[E], bool] = lambda _: True,
) -> E | None:
    """The first exception in ``exc`` (depth first through groups) that is a
    ``kind`` and satisfies ``where``, or None."""
    if isinstance(exc, kind) and where(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_leaf(inner, kind, where)
            if found is not None:
                return found
    return None


@asynccontextmanager
async def single_errors() -> AsyncIterator[None]:
    """Let a lone error leave an internal nursery bare.

    Callers handle a child's ``DatabaseError`` (or log a sink bug) as they
    would from a plain ``await``; a one-member ExceptionGroup only hides it.
    Several errors stay grouped; cancellation passes through untouched.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        errors = group.subgroup(lambda e: not isinstance(e, trio.Cancelled))
        leaves = [] if errors is None else list(_leaves(errors))
        if len(leaves) == 1:
            raise leaves[0] from group
        raise


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
