"""A fake Jetstream v1 ``/subscribe`` server for tests.

It speaks the real wire format (JSON text frames ``{did, time_us, kind,
commit|identity|account}``) and the real cursor rules: ``wantedCollections``
filters commits only, identity/account events always flow, ``cursor`` replays
events with ``time_us >= cursor``, no cursor means live tail, and a cursor
older than the replay window is silently clamped to the oldest event kept.

The server side is written directly on wsproto (the sans-io engine under
trio-websocket) rather than ``trio_websocket.serve_websocket``, because
trio-websocket answers pings inside its private reader task and a fake must
be able to stop answering them. It runs over real TCP (``serve``, port 0,
started with ``nursery.start``) or over in-memory streams (``opener``), the
latter keeping MockClock tests deterministic.

Controls: ``publish``/``commit``/``identity``/``account``, ``drop`` (clean
close or abnormal 1006), ``go_silent`` (keep the socket, stop sending),
``stop_answering_pings``, ``refuse`` (HTTP 503 at handshake).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
import trio.testing
import trio_websocket
from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from coves import clock

WINDOW_SECONDS = 36 * 3600.0
Opener = Callable[[str], AbstractAsyncContextManager[trio_websocket.WebSocketConnection]]


@dataclass(frozen=True)
class SubscribeRequest:
    """What one client asked for at handshake."""

    target: str
    wanted_collections: tuple[str, ...]
    cursor: int | None
    params: dict[str, list[str]]


@dataclass
class _Conn:
    fake: FakeJetstream
    stream: trio.abc.Stream
    ws: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.SERVER))
    lock: trio.Lock = field(default_factory=trio.Lock)
    silent: bool = False
    answer_pings: bool = True
    sent: int = 0
    pings: int = 0
    closed: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    async def send(self, event: Event) -> bool:
        try:
            data = self.ws.send(event)
        except Exception:  # wsproto refuses sends in a closing state
            return False
        async with self.lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed.set()
                return False
        return True

    async def abort(self) -> None:
        """Close TCP without a close frame: the client sees 1006."""
        self.closed.set()
        self.scope.cancel()
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self.stream)


class FakeJetstream:
    def __init__(
        self, *, window_seconds: float = WINDOW_SECONDS, refuse_status: int | None = None
    ) -> None:
        self.window_us = round(window_seconds * 1_000_000)
        self.refuse_status = refuse_status
        self.events: list[dict[str, Any]] = []
        self._encoded: list[str] = []
        self._times: list[int] = []
        self.requests: list[SubscribeRequest] = []
        self.request_times: list[float] = []  # trio time of each handshake
        self.accepted = 0
        self.live: list[_Conn] = []
        self.client_messages: list[str] = []
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.port: int | None = None

    # -- events -------------------------------------------------------------------------
    @staticmethod
    def now_us() -> int:
        return int(clock.wall_now() * 1_000_000)

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append an event; ``time_us`` defaults to now and must keep increasing."""
        last = self._times[-1] if self._times else 0
        time_us = event.get("time_us") or max(last + 1, self.now_us())
        if time_us <= last:
            raise ValueError("time_us must increase (Jetstream assigns it on receipt)")
        event = {**event, "time_us": time_us}
        self.events.append(event)
        self._times.append(time_us)
        self._encoded.append(json.dumps(event, separators=(",", ":")))
        self._notify()
        return event

    def commit(
        self,
        did: str,
        collection: str,
        rkey: str,
        *,
        operation: str = "create",
        record: dict[str, Any] | None = None,
        time_us: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "rev": f"3l{len(self.events):011d}",
            "operation": operation,
            "collection": collection,
            "rkey": rkey,
        }
        if operation != "delete":
            body["record"] = record or {"$type": collection, "createdAt": "2026-01-01T00:00:00Z"}
            body["cid"] = "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5yyi3xv7ezhaxnq"
        return self.publish({"did": did, "time_us": time_us, "kind": "commit", "commit": body})

    def identity(self, did: str, handle: str) -> dict[str, Any]:
        seq = len(self.events) + 1
        return self.publish(
            {
                "did": did,
                "time_us": None,
                "kind": "identity",
                "identity": {
                    "did": did,
                    "handle": handle,
                    "seq": seq,
                    "time": "2026-01-01T00:00:00Z",
                },
            }
        )

    def account(self, did: str, *, active: bool, status: str | None = None) -> dict[str, Any]:
        account: dict[str, Any] = {
            "active": active,
            "did": did,
            "seq": len(self.events) + 1,
            "time": "2026-01-01T00:00:00Z",
        }
        if status is not None:
            account["status"] = status
        return self.publish({"did": did, "time_us": None, "kind": "account", "account": account})

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- controls -----------------------------------------------------------------------
    async def drop(self, *, abnormal: bool = False, code: int = 1000) -> int:
        """Close every live connection; returns how many were closed."""
        conns = list(self.live)
        for conn in conns:
            if abnormal:
                await conn.abort()
            else:
                conn.silent = True
                await conn.send(CloseConnection(code=code, reason="fake going away"))
        return len(conns)

    def go_silent(self) -> None:
        """Live connections stay open (and answer pings) but send nothing more."""
        for conn in self.live:
            conn.silent = True

    def stop_answering_pings(self) -> None:
        for conn in self.live:
            conn.answer_pings = False

    def refuse(self, status: int | None = 503) -> None:
        """Reject new handshakes with this HTTP status (None accepts again)."""
        self.refuse_status = status

    async def wait_for_connections(self, n: int) -> None:
        """Until ``n`` handshakes have been accepted in total."""
        while self.accepted < n:
            changed = self._changed
            if self.accepted >= n:
                return
            await changed.wait()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    # -- serving ------------------------------------------------------------------------
    async def serve(
        self,
        host: str = "127.0.0.1",
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve over TCP on an ephemeral port; ``nursery.start`` returns the URL."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            listeners = await trio.open_tcp_listeners(0, host=host)
            self.port = listeners[0].socket.getsockname()[1]
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            task_status.started(self.url)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeJetstream]:
        """Host in-memory connections (see ``opener``) for the duration of the block."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            yield self
            nursery.cancel_scope.cancel()

    def opener(self, *, max_message_size: int = 8 * 1024 * 1024) -> Opener:
        """A connection opener over in-memory streams, shaped like ``open_websocket_url``."""

        @asynccontextmanager
        async def open_memory(url: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
            if self._nursery is None:
                raise RuntimeError("use `async with fake.running():` first")
            client, server = trio.testing.memory_stream_pair()
            self._nursery.start_soon(self._handle, server)
            parts = urlsplit(url)
            resource = parts.path + (f"?{parts.query}" if parts.query else "")
            async with _unwrap_group(), trio.open_nursery() as nursery:
                conn = await trio_websocket.wrap_client_stream(
                    nursery,
                    client,  # type: ignore[arg-type]
                    parts.netloc,
                    resource,
                    max_message_size=max_message_size,
                )
                try:
                    yield conn
                finally:
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await conn.aclose()
                    nursery.cancel_scope.cancel()

        return open_memory

    async def _handle(self, stream: trio.abc.Stream) -> None:
        conn = _Conn(self, stream, answer_pings=True)
        try:
            with conn.scope:
                await self._serve_conn(conn)
        finally:
            if conn in self.live:
                self.live.remove(conn)
            conn.closed.set()
            await trio.aclose_forcefully(stream)
            self._notify()

    async def _serve_conn(self, conn: _Conn) -> None:
        request = await self._read_request(conn)
        if request is None:
            return
        parsed = _parse_request(request.target)
        self.requests.append(parsed)
        self.request_times.append(trio.current_time())
        if self.refuse_status is not None:
            await conn.send(
                RejectConnection(
                    status_code=self.refuse_status,
                    headers=[(b"content-length", b"0")],
                    has_body=False,
                )
            )
            self._notify()
            return
        position = self._start_position(parsed.cursor)  # fixed at handshake time
        if not await conn.send(AcceptConnection()):
            return
        self.accepted += 1
        self.live.append(conn)
        self._notify()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, conn, parsed, position)
            await self._read_loop(conn)
            nursery.cancel_scope.cancel()

    async def _read_request(self, conn: _Conn) -> Request | None:
        while True:
            for event in conn.ws.events():
                if isinstance(event, Request):
                    return event
            try:
                data = await conn.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if not data:
                return None
            conn.ws.receive_data(data)

    async def _read_loop(self, conn: _Conn) -> None:
        while not conn.closed.is_set():
            try:
                data = await conn.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            conn.ws.receive_data(data or None)
            for event in conn.ws.events():
                if isinstance(event, Ping):
                    conn.pings += 1
                    if conn.answer_pings:
                        await conn.send(event.response())
                elif isinstance(event, CloseConnection):
                    if conn.ws.state is ConnectionState.REMOTE_CLOSING:
                        await conn.send(event.response())
                    return
                elif isinstance(event, TextMessage):
                    self.client_messages.append(event.data)
            if not data:
                return

    def _start_position(self, cursor: int | None) -> int:
        now = self.now_us()
        if cursor is None or cursor > now:
            return len(self._times)  # live tail
        oldest = now - self.window_us  # older cursors are clamped, silently
        return bisect.bisect_left(self._times, max(cursor, oldest))

    async def _pump(self, conn: _Conn, request: SubscribeRequest, position: int) -> None:
        wanted = request.wanted_collections
        while True:
            changed = self._changed
            if not conn.silent and position < len(self.events):
                event = self.events[position]
                text = self._encoded[position]
                position += 1
                if _wanted(event, wanted):
                    if not await conn.send(TextMessage(data=text)):
                        return
                    conn.sent += 1
                continue
            await changed.wait()


def _wanted(event: dict[str, Any], wanted: tuple[str, ...]) -> bool:
    if event.get("kind") != "commit" or not wanted:
        return True
    collection = str(event.get("commit", {}).get("collection", ""))
    for nsid in wanted:
        if nsid.endswith(".*"):
            if collection.startswith(nsid[:-1]):
                return True
        elif collection == nsid:
            return True
    return False


def _parse_request(target: str) -> SubscribeRequest:
    parts = urlsplit(target)
    params = parse_qs(parts.query, keep_blank_values=True)
    cursor_values = params.get("cursor", [])
    cursor: int | None = None
    if cursor_values and cursor_values[-1].strip():
        try:
            cursor = int(cursor_values[-1])
        except ValueError:
            cursor = None
    return SubscribeRequest(
        target=target,
        wanted_collections=tuple(dict.fromkeys(params.get("wantedCollections", []))),
        cursor=cursor,
        params=params,
    )


@asynccontextmanager
async def _unwrap_group() -> AsyncIterator[None]:
    """Raise a lone error out of a nursery bare, as ``open_websocket_url`` does."""
    try:
        yield
    except BaseExceptionGroup as group:
        rest = group.subgroup(lambda e: not isinstance(e, trio.Cancelled))
        if rest is None:
            raise
        leaves = list(_leaves(rest))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
