"""Finding one failure inside the exception groups Trio's nurseries raise.

A child's error reaches the top wrapped in as many groups as nurseries it
crossed; deciding how to report it (a refusal to start, a port in use, an
operator's mistake) means finding the first leaf of a kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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
