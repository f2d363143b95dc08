"""psycopg 3 pool driven from Trio through worker threads.

Each call hops to a thread with ``trio.to_thread.run_sync`` under a
``CapacityLimiter`` the size of the pool, so at most ``pool_size`` threads
ever wait on the pool and the limiter's waiting count is the true queue
depth. Cancellation is deterministic: a running statement is not abandoned,
it finishes or hits the statement timeout, then the cancel is delivered.

Outages. :meth:`Database.watch` probes the server on its own connection
twice a second with a one-second deadline of our own (a frozen server never
fires its statement timeout). Once a probe fails, the database is declared
unreachable: new calls fail at once with :class:`DatabaseUnavailable`
(without waiting on the pool, whose connection attempts would take the
connect timeout), and calls made under :func:`fail_fast_on_outage` (the HTTP
server's tasks) that are already waiting are abandoned, so a request gets its
503 within about a second instead of hanging until the server comes back. The
next successful probe declares it reachable again; nothing else is needed to
recover.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import trio
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from coves.logs import get_logger

log = get_logger(__name__)

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
    if isinstance(exc, PoolTimeout | PoolClosed | psycopg.OperationalError):
        return DatabaseUnavailable(str(exc))
    return exc


_ABANDON_ON_OUTAGE: ContextVar[bool] = ContextVar("coves_db_abandon_on_outage", default=False)


@contextmanager
def fail_fast_on_outage() -> Iterator[None]:
    """Calls made inside (by this task and the tasks it starts) are abandoned when the
    database is declared unreachable: for request handling, where a prompt 503 beats a
    correct answer a minute late. Not for ingestion, which waits for the database."""
    token = _ABANDON_ON_OUTAGE.set(True)
    try:
        yield
    finally:
        _ABANDON_ON_OUTAGE.reset(token)


PROBE_INTERVAL = 0.5
PROBE_TIMEOUT = 1.0
Probe = Callable[[float], Awaitable[bool]]


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
            check=self._check_if_idle,
            reset=_mark_returned,
            open=False,
            name="coves",
        )
        self._opened = False
        self._outage_seen_at = 0.0  # connections returned before it are always checked
        self._connect_timeout = max(1, int(connect_timeout_s))
        self._application_name = application_name
        self._observer: QueryObserver | None = None
        self._side_conn: psycopg.Connection[Row] | None = None
        self._side_lock = trio.Lock()
        self._reachable = True
        self._watching = False
        self._outage_scopes: set[trio.CancelScope] = set()
        self._suspect = trio.Event()
        self._probe_conn: psycopg.Connection[Any] | None = None
        self._probe_busy = threading.Event()  # a probe thread (maybe abandoned) still runs
        self._probe_limiter = trio.CapacityLimiter(2)  # never queued behind other threads

    def instrument(self, observer: QueryObserver) -> None:
        """Time every statement by the call site that issued it (see coves.db.observe)."""
        self._observer = observer

    def _check_if_idle(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check on checkout, skipped for a connection returned moments ago
        (and not before the last outage the watcher saw)."""
        returned = getattr(conn, _RETURNED_AT, None)
        if (
            returned is not None
            and returned > self._outage_seen_at
            and time.monotonic() - returned < RECHECK_AFTER_IDLE_SECONDS
            and conn.pgconn.status == psycopg.pq.ConnStatus.OK
        ):
            return
        ConnectionPool.check_connection(conn)

    # -- outages -----------------------------------------------------------------
    @property
    def reachable(self) -> bool:
        """The last verdict of :meth:`watch` (True when nothing watches)."""
        return self._reachable

    async def is_reachable(self) -> bool:
        """The watcher's verdict at once, or (unwatched: tools, tests) a ping."""
        return self._reachable if self._watching else await self.ping()

    def _set_reachable(self, reachable: bool, why: str = "") -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            log.warning("database reachable again")
            return
        self._outage_seen_at = time.monotonic()
        log.error("database unreachable; failing requests fast until it answers", why=why)
        for scope in list(self._outage_scopes):
            scope.cancel()

    def _suspect_outage(self) -> None:
        """A call saw the server fail: probe now rather than at the next tick."""
        self._suspect.set()

    async def watch(
        self,
        *,
        interval: float = PROBE_INTERVAL,
        timeout: float = PROBE_TIMEOUT,
        probe: Probe | None = None,
    ) -> None:
        """Probe the server until cancelled, keeping :attr:`reachable` current."""
        check = probe or self._probe
        self._watching = True
        try:
            while True:
                ok = await check(timeout)
                self._set_reachable(ok, "no answer to the health probe")
                with trio.move_on_after(interval):
                    await self._suspect.wait()
                self._suspect = trio.Event()
        finally:
            self._watching = False
            self._reachable = True  # nobody watches: calls go to the pool as before

    async def _probe(self, timeout: float) -> bool:
        if self._probe_busy.is_set():
            return False  # the last probe is still stuck on a frozen server
        with trio.move_on_after(timeout):
            return await trio.to_thread.run_sync(
                self._probe_blocking, abandon_on_cancel=True, limiter=self._probe_limiter
            )
        return False

    def _probe_blocking(self) -> bool:
        self._probe_busy.set()
        try:
            if self._probe_conn is None or self._probe_conn.closed:
                self._probe_conn = psycopg.connect(
                    self.conninfo, connect_timeout=self._connect_timeout, autocommit=True
                )
            self._probe_conn.execute("SELECT 1").fetchone()
            return True
        except psycopg.Error:
            conn, self._probe_conn = self._probe_conn, None
            if conn is not None:
                conn.close()
            return False
        finally:
            self._probe_busy.clear()

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
        side, self._side_conn = self._side_conn, None
        if side is not None:
            await trio.to_thread.run_sync(side.close)
        if self._opened:
            self._opened = False
            await trio.to_thread.run_sync(self._pool.close)
        conn, self._probe_conn = self._probe_conn, None
        if conn is not None and not self._probe_busy.is_set():
            await trio.to_thread.run_sync(conn.close)

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

        def work() -> T:
            with self._pool.connection() as conn:
                if transaction:
                    with conn.transaction():
                        return fn(conn)
                return fn(conn)

        observer = self._observer
        if observer is not None:
            work = _timed(work, observer, fn)
        if not self._reachable:
            raise DatabaseUnavailable("the database is unreachable")
        try:
            if _ABANDON_ON_OUTAGE.get():
                return await self._abandonable(work)
            return await trio.to_thread.run_sync(work, limiter=self._limiter)
        except DatabaseError:
            raise
        except BaseException as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            if isinstance(translated, DatabaseUnavailable):
                # Other pooled connections may be cut too (a quick restart the
                # watcher never saw): check each again before it is used.
                self._outage_seen_at = time.monotonic()
                self._suspect_outage()
            raise translated from exc

    async def _abandonable(self, work: Callable[[], T]) -> T:
        with trio.CancelScope() as scope:
            self._outage_scopes.add(scope)
            try:
                return await trio.to_thread.run_sync(
                    work, limiter=self._limiter, abandon_on_cancel=True
                )
            finally:
                self._outage_scopes.discard(scope)
        raise DatabaseUnavailable("the database stopped answering")

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
        if not self._reachable:
            raise DatabaseUnavailable("the database is unreachable")
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
        """Whether the server answers, asked on a connection of its own.

        Not through the pool: when every pooled connection is busy and requests
        queue on the limiter, the database is still healthy, and a health check
        that waited in that queue would report a busy instance as down (and a
        load balancer would pull it, moving its load onto the others).
        """
        rows = await self.side_fetch("SELECT 1 AS ok", timeout=timeout)
        return rows is not None and bool(rows and rows[0]["ok"] == 1)

    async def side_fetch(
        self, query: str, params: Params = None, *, timeout: float = 2.0
    ) -> list[Row] | None:
        """One small operational read on the side connection; None when it fails.

        For ``_health`` and the like: never queued behind the pool, at most one
        at a time, and a statement still running after ``timeout`` is
        abandoned to its thread rather than waited for.
        """
        with trio.move_on_after(timeout):
            async with self._side_lock:
                return await trio.to_thread.run_sync(
                    self._side_fetch_sync, query, params, abandon_on_cancel=True
                )
        return None

    def _side_fetch_sync(self, query: str, params: Params) -> list[Row] | None:
        # A connection the server dropped (restart, idle timeout) is only noticed
        # when used: then one fresh connection is tried before reporting failure.
        for _attempt in range(2):
            conn = self._side_conn
            fresh = conn is None or conn.closed
            try:
                if conn is None or conn.closed:
                    conn = self._side_conn = psycopg.Connection[Row].connect(
                        self.conninfo,
                        autocommit=True,
                        row_factory=dict_row,
                        connect_timeout=self._connect_timeout,
                        application_name=f"{self._application_name}-side",
                        options=f"-c statement_timeout={self.statement_timeout_ms}",
                    )
                return conn.execute(query, params).fetchall()
            except psycopg.Error:
                self._side_conn = None
                if conn is not None:
                    conn.close()
                if fresh:
                    return None
        return None

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


# A pooled connection used this recently is handed out without the pool's check
# (an empty statement: one more round trip for every statement a request makes).
# One that has sat idle longer is checked, so connections a PostgreSQL restart cut
# are replaced before anyone uses them. A restart inside this window costs one
# statement an error (a 503; the pool discards that connection), after which every
# connection returned before it is checked again (see ``run``).
RECHECK_AFTER_IDLE_SECONDS = 2.0
_RETURNED_AT = "_coves_returned_at"


def _mark_returned(conn: psycopg.Connection[Any]) -> None:
    setattr(conn, _RETURNED_AT, time.monotonic())


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


def _timed(
    work: Callable[[], T], observer: QueryObserver, fn: Callable[..., Any]
) -> Callable[[], T]:
    """``work`` reporting its duration to ``observer`` under the name of its query."""
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

    return timed


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
