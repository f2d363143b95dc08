"""LISTEN on a PostgreSQL channel from Trio, on a connection of its own.

psycopg's ``notifies()`` blocks, so it runs in a worker thread one short
wait at a time (it returns as soon as a notification arrives, or after
``poll`` seconds), and the payloads are handed to the event loop between
waits. Every ``probe_every`` seconds (Trio's clock) the connection is asked
``SELECT 1``, so a connection the network silently lost is noticed even when
nothing is being sent.

:func:`listen` returns only by failing (:class:`DatabaseUnavailable`) or
being cancelled; reconnecting, and deciding what a gap means, is the
caller's business (nurseries/invalidation.py). Nothing is delivered for the
time the connection was down: PostgreSQL does not queue notifications for
absent listeners.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import trio
from psycopg import sql

from coves import clock
from coves.db._pool import DatabaseUnavailable


async def listen(
    conninfo: str,
    channel: str,
    deliver: Callable[[str], None],
    *,
    on_listening: Callable[[], None] | None = None,
    poll: float = 1.0,
    probe_every: float = 30.0,
    connect_timeout: int = 10,
) -> None:
    """Deliver every payload sent on ``channel`` until the connection fails."""

    def connect() -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(
            conninfo,
            autocommit=True,
            connect_timeout=connect_timeout,
            application_name="coves-listen",
        )
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    try:
        conn = await trio.to_thread.run_sync(connect)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    closing = threading.Event()
    busy = threading.Lock()  # held by the thread while it uses the connection

    def wait() -> list[str]:
        with busy:
            try:
                if closing.is_set():
                    return []
                return [n.payload for n in conn.notifies(timeout=poll, stop_after=1)]
            finally:
                if closing.is_set():
                    conn.close()

    def probe() -> None:
        with busy:
            conn.execute("SELECT 1")

    try:
        if on_listening is not None:
            on_listening()
        next_probe = clock.monotonic() + probe_every
        while True:
            try:
                payloads = await trio.to_thread.run_sync(wait, abandon_on_cancel=True)
                if clock.monotonic() >= next_probe:
                    await trio.to_thread.run_sync(probe, abandon_on_cancel=True)
                    next_probe = clock.monotonic() + probe_every
            except psycopg.Error as exc:
                raise DatabaseUnavailable(str(exc)) from exc
            for payload in payloads:
                deliver(payload)
    finally:
        closing.set()
        # An abandoned wait closes the connection itself when it returns.
        if busy.acquire(blocking=False):
            try:
                conn.close()
            finally:
                busy.release()
