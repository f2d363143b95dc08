"""Query latency by query shape, and the slow-query log.

A "shape" is the query function that issued the statement: the function in
``coves.db.queries`` (or elsewhere) that called ``Database.fetch`` & co., or
the function handed to ``Database.run``. That names a query the way the code
does (``feeds.community_page``, ``indexer.Indexer._apply``) with a bounded
set of label values, and costs one frame lookup and one dict hit per call:
no SQL parsing or normalisation on the read and ingest hot paths. The
histogram child of each shape is looked up once and kept per code object.

Statements slower than ``DB_SLOW_QUERY_MS`` are counted and logged (shape,
duration and the statement text without its parameters, which can hold
user data).
"""

from __future__ import annotations

import re
from types import CodeType
from typing import Any

from coves.logs import get_logger
from coves.metrics import Metrics

log = get_logger("coves.db.slow")

QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SPACE = re.compile(r"\s+")
_PREFIXES = ("coves.db.queries.", "coves.", "nurseries.")


def shape_name(code: CodeType | None) -> str:
    """``module.Qual.name`` of a query function, without package prefix or ``<locals>``."""
    if code is None:
        return "unknown"
    qualname = code.co_qualname.split(".<locals>", 1)[0]
    module = _module_of(code)
    for prefix in _PREFIXES:
        if module.startswith(prefix):
            module = module[len(prefix) :]
            break
    return f"{module}.{qualname}" if module else qualname


def _module_of(code: CodeType) -> str:
    """The module a code object was compiled from, by its file name."""
    path = code.co_filename.replace("\\", "/")
    for root in ("/coves/", "/nurseries/"):
        at = path.rfind(root)
        if at >= 0:
            dotted = path[at + 1 :].removesuffix(".py").replace("/", ".")
            return dotted.removesuffix(".__init__")
    return path.rsplit("/", 1)[-1].removesuffix(".py")


class QueryObserver:
    def __init__(self, metrics: Metrics, *, slow_ms: int) -> None:
        self._latency = metrics.histogram(
            "coves_db_query_duration_seconds",
            "database calls by query shape (the query function that issued them)",
            ["query"],
            buckets=QUERY_BUCKETS,
        )
        self._slow_counter = metrics.counter(
            "coves_db_slow_queries_total", "database calls slower than DB_SLOW_QUERY_MS", ["query"]
        )
        self._slow_s = slow_ms / 1000 if slow_ms > 0 else None
        self._children: dict[CodeType | None, tuple[str, Any]] = {}

    def observe(self, code: CodeType | None, seconds: float, statement: str | None) -> None:
        """Called in the database thread after each call, failed ones included."""
        entry = self._children.get(code)
        if entry is None:
            name = shape_name(code)
            entry = self._children[code] = (name, self._latency.labels(name))
        entry[1].observe(seconds)
        if self._slow_s is not None and seconds >= self._slow_s:
            self._slow(entry[0], seconds, statement)

    def _slow(self, name: str, seconds: float, statement: str | None) -> None:
        self._slow_counter.labels(name).inc()
        text = _SPACE.sub(" ", statement).strip()[:500] if statement else None
        log.warning("slow query", query=name, duration_ms=round(seconds * 1000, 1), statement=text)
