"""psycopg 3 pool driven from Trio through worker threads.

Each call hops to a thread with ``trio.to_thread.run_sync`` under a
``CapacityLimiter`` the size of the pool, so at most ``pool_size`` threads
ever wait on the pool and the limiter's waiting count is the true queue
depth. Cancellation is deterministic: a running statement is not abandoned,
it finishes or hits the statement timeout, then the cancel is delivered.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import trio
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

if TYPE_CHECKING:
    from coves.db.observe import QueryObserver

T = TypeVar("T")
Row = dict[str, Any]
Params = Sequence[Any] | dict[str, Any] | None


class DatabaseError(Exception):
    """Base of the database exceptions callers may handle."""


class DatabaseUnavailable(DatabaseError):
    """The server cannot be reached or the pool has no connection to give."""


class QueryTimeout(DatabaseError):
    """A statement ran past the per-statement timeout and was cancelled."""


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, pg_errors.QueryCanceled):
        return QueryTimeout(str(exc))
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return DatabaseUnavailable(str(exc))
    return exc


@dataclass(frozen=True)
class PoolStats:
    size: int
    in_use: int
    idle: int
    waiting: int


class Database:
    """The one way Coves talks to PostgreSQL."""

    def __init__(
        self,
        conninfo: str,
        *,
        pool_size: int = 10,
        statement_timeout_ms: int = 10_000,
        connect_timeout_s: float = 10.0,
        application_name: str = "coves",
    ) -> None:
        self.conninfo = conninfo
        self.pool_size = pool_size
        self.statement_timeout_ms = statement_timeout_ms
        self._limiter = trio.CapacityLimiter(pool_size)
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            conninfo,
            connection_class=psycopg.Connection[Row],
            min_size=min(2, pool_size),
            max_size=pool_size,
            kwargs={
                "row_factory": dict_row,
                "autocommit": True,
                "application_name": application_name,
                "options": f"-c statement_timeout={statement_timeout_ms}",
                "connect_timeout": max(1, int(connect_timeout_s)),
            },
            timeout=connect_timeout_s,
            check=ConnectionPool.check_connection,
            open=False,
            name="coves",
        )
        self._opened = False
        self._connect_timeout = max(1, int(connect_timeout_s))
        self._observer: QueryObserver | None = None

    def instrument(self, observer: QueryObserver) -> None:
        """Time every statement by the call site that issued it (see coves.db.observe)."""
        self._observer = observer

    async def probe(self) -> None:
        """One direct connection attempt, failing fast.

        The pool retries silently until its timeout; at start-up we would
        rather know at once that the server refuses us, so the supervisor's
        backoff and escalation (not a 30 s wait) govern the retries.
        """

        def _connect() -> None:
            with psycopg.connect(self.conninfo, connect_timeout=self._connect_timeout):
                pass

        try:
            await trio.to_thread.run_sync(_connect)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def open(self, *, wait: bool = True) -> None:
        def _open() -> None:
            self._pool.open(wait=wait, timeout=30.0)

        try:
            await trio.to_thread.run_sync(_open)
        except BaseException as exc:
            raise _translate(exc) from exc
        self._opened = True

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await trio.to_thread.run_sync(self._pool.close)

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- whole units of work in one thread hop ---------------------------------
    async def run(
        self, fn: Callable[[psycopg.Connection[Row]], T], *, transaction: bool = True
    ) -> T:
        """Run ``fn(conn)`` in a worker thread, inside a transaction by default.

        The cheapest way to do several statements: one thread hop, one
        connection checkout. The ingestion batches and the migration runner
        use it. With an observer installed, the call is timed under the name
        of ``fn`` (or of the query function that called ``fetch`` & co.).
        """
        observer = self._observer

        def work() -> T:
            with self._pool.connection() as conn:
                if transaction:
                    with conn.transaction():
                        return fn(conn)
                return fn(conn)

        call = work
        if observer is not None:
            if isinstance(fn, _Statement):
                shape, statement = fn.shape, fn.query
            else:
                shape, statement = getattr(fn, "__code__", None), None

            def timed() -> T:
                started = time.perf_counter()
                try:
                    return work()
                finally:
                    observer.observe(shape, time.perf_counter() - started, statement)

            call = timed
        try:
            return await trio.to_thread.run_sync(call, limiter=self._limiter)
        except DatabaseError:
            raise
        except BaseException as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def _caller(self) -> CodeType | None:
        """The code of the query function that called fetch & co. (only when timing)."""
        return sys._getframe(2).f_code if self._observer is not None else None

    async def fetch(self, query: str, params: Params = None) -> list[Row]:
        return await self.run(_Statement(query, params, "all", self._caller()), transaction=False)

    async def fetchrow(self, query: str, params: Params = None) -> Row | None:
        return await self.run(_Statement(query, params, "one", self._caller()), transaction=False)

    async def fetchval(self, query: str, params: Params = None) -> Any:
        row = await self.run(_Statement(query, params, "one", self._caller()), transaction=False)
        if row is None:
            return None
        return next(iter(row.values()))

    async def execute(self, query: str, params: Params = None) -> int:
        return await self.run(_Statement(query, params, "count", self._caller()), transaction=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction spanning several awaits; prefer :meth:`run` when you can."""
        async with self._limiter:
            try:
                conn = await trio.to_thread.run_sync(self._pool.getconn)
            except BaseException as exc:
                raise _translate(exc) from exc
            tx = Transaction(conn)
            try:
                await trio.to_thread.run_sync(lambda: conn.execute("BEGIN"))
                try:
                    yield tx
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(conn.rollback)
                    raise
                else:
                    await trio.to_thread.run_sync(lambda: conn.execute("COMMIT"))
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._pool.putconn, conn)

    async def ping(self, timeout: float = 2.0) -> bool:
        with trio.move_on_after(timeout):
            try:
                return bool(await self.fetchval("SELECT 1") == 1)
            except DatabaseError:
                return False
        return False

    def stats(self) -> PoolStats:
        raw = self._pool.get_stats()
        size = int(raw.get("pool_size", 0))
        idle = int(raw.get("pool_available", 0))
        return PoolStats(
            size=size,
            in_use=max(0, size - idle),
            idle=idle,
            waiting=self._limiter.statistics().tasks_waiting,
        )


class _Statement:
    """One statement as a ``run`` function, carrying what the query timing needs."""

    __slots__ = ("mode", "params", "query", "shape")

    def __init__(self, query: str, params: Params, mode: str, shape: CodeType | None) -> None:
        self.query = query
        self.params = params
        self.mode = mode
        self.shape = shape

    def __call__(self, conn: psycopg.Connection[Row]) -> Any:
        if self.mode == "count":
            return conn.execute(self.query, self.params).rowcount
        cursor = conn.execute(self.query, self.params, prepare=True)
        return cursor.fetchall() if self.mode == "all" else cursor.fetchone()


class Transaction:
    """Statements on one connection inside :meth:`Database.transaction`."""

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._conn = conn

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await trio.to_thread.run_sync(fn)
        except BaseException as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def fetch(self, query: str, params: Params = None) -> list[Row]:
        return await self._call(lambda: self._conn.execute(query, params).fetchall())

    async def fetchrow(self, query: str, params: Params = None) -> Row | None:
        return await self._call(lambda: self._conn.execute(query, params).fetchone())

    async def execute(self, query: str, params: Params = None) -> int:
        return await self._call(lambda: self._conn.execute(query, params).rowcount)
