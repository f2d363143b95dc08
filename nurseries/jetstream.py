"""The Jetstream consumer child: one websocket, frames to the Sink in batches.

The same child reads a PDS's or relay's firehose (``kind="firehose"``, one per
``FIREHOSE_URL`` entry): binary frames, a ``seq`` cursor resumed exactly, and a
sink (``coves.ingest.firehose_sink``) that decodes them; everything below about
liveness, backoff, the breaker and batching applies to both.

Failure handling is the point of this module (atproto-facts §E2): public
Jetstream instances close with 1006 every few seconds while catching up,
go silent while the socket stays open, and refuse dials with 503 during
outages. So the consumer

- owns the cursor: every (re)connect resumes from the cursor the sink
  committed (minus a small rewind), never from a configured constant, and a
  cursor older than the server's replay window is reported as a gap because
  the server clamps it silently;
- watches liveness twice: an idle watchdog (no frame for N seconds while we
  are waiting on the socket) and websocket pings with a pong deadline;
- spaces reconnects with full-jitter exponential backoff (reset after a
  stable minute) and stops dialling through a circuit breaker when the
  endpoint keeps failing;
- overlaps reading and applying through a bounded channel, so a slow
  database slows reading instead of growing memory; a database outage drops
  the connection and the unapplied frames and resumes later from the stored
  cursor, so nothing is lost (the cursor only moves when a batch commits).

The connection opener is injected: production dials with trio-websocket,
tests connect over in-memory streams so MockClock runs stay deterministic.
"""

from __future__ import annotations

import random
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import trio
import trio_websocket
from prometheus_client.core import GaugeMetricFamily

from coves import clock
from coves.breaker import BreakerState, CircuitBreaker
from coves.config import DEFAULT_JETSTREAM_URL, Settings
from coves.db import DatabaseError
from coves.excgroups import single_errors
from coves.ingest.pipeline import run_pipelined
from coves.ingest.stream import (
    COLLECTIONS,
    REPLAY_WINDOW_SECONDS,
    detect_gap,
    resume_cursor,
    source_name,
    subscribe_repos_url,
    subscribe_url,
)
from coves.ingest.types import BatchResult, Frame, Sink
from coves.logs import get_logger
from coves.metrics import Metrics
from nurseries.backoff import ExponentialBackoff
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)

Opener = Callable[[str], AbstractAsyncContextManager[trio_websocket.WebSocketConnection]]

# Frames are at most 5 MB on the firehose (spec `sync`); Jetstream re-encodes
# records as JSON, which can be larger than the CBOR, so leave headroom.
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class ConnectionState(StrEnum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    BREAKER_OPEN = "breaker_open"


class Reason(StrEnum):
    """Why a connection ended; the label of the reconnect counter."""

    CLOSED = "closed"  # the server closed cleanly (1000/1001)
    ABNORMAL = "abnormal"  # 1006: TCP went away without a close frame
    TOO_BIG = "message_too_big"  # 1009: a frame over JETSTREAM_MAX_MESSAGE_BYTES
    CLOSED_ERROR = "closed_error"  # any other close code (1011, ...)
    IDLE_TIMEOUT = "idle_timeout"
    PONG_TIMEOUT = "pong_timeout"
    CONNECT_FAILED = "connect_failed"  # DNS, TCP, TLS or handshake timeout
    REJECTED = "rejected"  # HTTP status instead of 101
    DATABASE = "database"
    SHUTDOWN = "shutdown"


JETSTREAM = "jetstream"
FIREHOSE = "firehose"


@dataclass(frozen=True)
class ConsumerConfig:
    url: str = DEFAULT_JETSTREAM_URL
    # jetstream: JSON frames, time_us cursor with a rewind and a clock-based gap
    # check; firehose: com.atproto.sync.subscribeRepos, binary frames, exact
    # seq cursor (its sink detects gaps and OutdatedCursor).
    kind: str = JETSTREAM
    name: str = JETSTREAM  # the child's and the log's name; the cursor's for firehoses
    collections: tuple[str, ...] = COLLECTIONS
    rewind_seconds: float = 5.0
    batch_size: int = 500
    batch_ms: int = 200
    queue_frames: int = 1000  # the read→apply channel; bounds memory
    idle_timeout: float = 90.0
    ping_interval: float = 30.0
    pong_timeout: float = 10.0
    connect_timeout: float = 10.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    stable_after: float = 60.0  # a connection up this long resets the backoff
    breaker_threshold: int = 5
    breaker_cooldown: float = 60.0
    replay_window: float = REPLAY_WINDOW_SECONDS

    @classmethod
    def from_settings(
        cls, settings: Settings, *, firehose_url: str | None = None
    ) -> ConsumerConfig:
        """Jetstream's configuration, or a firehose source's (same mechanics, its own
        URL, name and idle timeout: a quiet PDS may send nothing for a long time)."""
        if firehose_url is not None:
            return replace(
                cls.from_settings(settings),
                url=firehose_url,
                kind=FIREHOSE,
                name=source_name(firehose_url),
                rewind_seconds=0.0,
                idle_timeout=settings.firehose_idle_timeout_seconds,
            )
        return cls(
            url=settings.jetstream_url,
            rewind_seconds=settings.jetstream_rewind_seconds,
            batch_size=settings.jetstream_batch_size,
            batch_ms=settings.jetstream_batch_ms,
            queue_frames=max(2 * settings.jetstream_batch_size, 100),
            idle_timeout=settings.jetstream_idle_timeout_seconds,
            ping_interval=settings.jetstream_ping_interval_seconds,
            pong_timeout=settings.jetstream_pong_timeout_seconds,
            connect_timeout=settings.jetstream_connect_timeout_seconds,
            max_message_bytes=settings.jetstream_max_message_bytes,
            breaker_threshold=settings.jetstream_breaker_threshold,
            breaker_cooldown=settings.jetstream_breaker_cooldown_seconds,
        )


def websocket_opener(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    connect_timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Opener:
    """Production: dial ws:// or wss:// and speak websocket over it with trio-websocket.

    ``wss://`` verifies the server against the system trust store unless an
    ``ssl_context`` is given (tests pass one trusting their own CA).
    """

    def open_url(url: str) -> AbstractAsyncContextManager[trio_websocket.WebSocketConnection]:
        return _dial(
            url,
            max_message_bytes=max_message_bytes,
            connect_timeout=connect_timeout,
            ssl_context=ssl_context,
        )

    return open_url


@asynccontextmanager
async def _dial(
    url: str,
    *,
    max_message_bytes: int,
    connect_timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname
    if parts.scheme not in ("ws", "wss") or not host:
        raise ValueError("a ws:// or wss:// URL is required")
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if port in (80, 443) else f"{host}:{port}"
    deadline = clock.monotonic() + connect_timeout
    stream: trio.abc.Stream
    try:
        with trio.fail_at(deadline):
            if secure:
                tls = await trio.open_ssl_over_tcp_stream(
                    host,
                    port,
                    ssl_context=ssl_context or ssl.create_default_context(),
                    https_compatible=True,
                )
                # Handshake now so a bad certificate fails fast and clearly,
                # not as a websocket handshake that never completes.
                try:
                    await tls.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(tls)
                    raise
                stream = tls
            else:
                stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise trio_websocket.ConnectionTimeout from None
    async with client_websocket(
        stream,
        host_header,
        resource,
        max_message_bytes=max_message_bytes,
        handshake_timeout=max(0.0, deadline - clock.monotonic()),
    ) as ws:
        yield ws


@asynccontextmanager
async def client_websocket(
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    handshake_timeout: float = 10.0,
    disconnect_timeout: float = 2.0,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A client websocket over any Trio stream; the stream is always closed on exit.

    ``open_websocket_url`` leaves the socket open when the server closed
    first (it is only reclaimed by the cyclic GC), which a consumer that
    reconnects all day cannot afford; owning the stream here fixes that and
    lets tests run the same code over in-memory streams.
    """
    try:
        async with single_errors(), trio.open_nursery() as nursery:
            try:
                with trio.fail_after(handshake_timeout):
                    ws = await trio_websocket.wrap_client_stream(
                        nursery,
                        cast(Any, stream),
                        host,
                        resource,
                        max_message_size=max_message_bytes,
                    )
            except trio.TooSlowError:
                raise trio_websocket.ConnectionTimeout from None
            try:
                yield ws
            except BaseException:
                # Cancelled or failing: no close handshake, just drop the TCP stream.
                nursery.cancel_scope.cancel()
                raise
            with trio.move_on_after(disconnect_timeout):
                await ws.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


class _Session:
    """Per-connection bookkeeping shared by the reader, pinger and applier."""

    def __init__(self) -> None:
        self.reason: Reason | None = None
        self.alive = False  # a frame or a pong proved the server is really there
        self.stalled = False  # the reader is blocked on a full channel
        self.stall_ended_at = float("-inf")
        # When the reader started waiting on the socket; None while it is busy
        # or blocked on backpressure (a slow database is not silence).
        self.waiting_since: float | None = None

    def end(self, reason: Reason, scope: trio.CancelScope) -> None:
        if self.reason is None:
            self.reason = reason
        scope.cancel()


class _Instruments:
    """The consumer's metrics. A firehose's carry a ``source`` label (its cursor name):
    with several ``FIREHOSE_URL`` entries each source has its own state, lag and
    counts, where one unlabelled series would let them overwrite each other. The one
    Jetstream consumer's are unlabelled."""

    def __init__(
        self, metrics: Metrics, prefix: str = "coves_jetstream", source: str | None = None
    ) -> None:
        by: list[str] = [] if source is None else ["source"]
        mine: tuple[str, ...] = () if source is None else (source,)

        def counter(name: str, doc: str) -> Any:
            metric = metrics.counter(f"{prefix}_{name}", doc, by)
            return metric.labels(*mine) if mine else metric

        def histogram(name: str, doc: str, **kw: Any) -> Any:
            metric = metrics.histogram(f"{prefix}_{name}", doc, by, **kw)
            return metric.labels(*mine) if mine else metric

        def gauge(name: str, doc: str) -> Any:
            metric = metrics.gauge(f"{prefix}_{name}", doc, by)
            return metric.labels(*mine) if mine else metric

        def per(kind: str, name: str, doc: str, label: str) -> Callable[[str], Any]:
            """A metric with one more label, bound to this source: ``per(value)``."""
            made = getattr(metrics, kind)(f"{prefix}_{name}", doc, [*by, label])
            return lambda value: made.labels(*mine, value)

        self.frames = counter("frames_total", "frames received")
        self.batches = counter("batches_total", "batches applied")
        self.batch_events = histogram(
            "batch_events",
            "frames per applied batch",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
        )
        self.apply_seconds = histogram("apply_seconds", "time to apply one batch")
        self.reconnects = per(
            "counter", "reconnects_total", "connections ended, by reason", "reason"
        )
        self.gaps = counter(
            "gaps_total", "resumes from a cursor older than the replay window (events lost)"
        )
        self.gap_seconds = counter("gap_seconds_total", "estimated span of events lost to gaps")
        self.apply_lag = gauge(
            "apply_lag_seconds",
            "how old the newest event of the last batch was when it was applied",
        )
        self.last_event = gauge(
            "last_event_timestamp_seconds", "time_us of the newest applied event"
        )
        self.state = per("gauge", "connection_state", "1 for the current connection state", "state")
        self.breaker = per("gauge", "breaker_state", "1 for the current breaker state", "state")


class JetstreamConsumer:
    """Use ``run`` as a supervised child; ``health`` feeds ``_health``."""

    def __init__(
        self,
        sink: Sink,
        config: ConsumerConfig | None = None,
        *,
        opener: Opener | None = None,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sink = sink
        self.config = config = config or ConsumerConfig()
        self._opener = opener or websocket_opener(config.max_message_bytes, config.connect_timeout)
        metrics = metrics or Metrics()
        self._firehose = config.kind == FIREHOSE
        self._prefix = "coves_firehose" if self._firehose else "coves_jetstream"
        self._source = config.name if self._firehose else None
        self._m = _Instruments(metrics, self._prefix, self._source)
        self._log = log.bind(source=config.name)
        self.backoff = ExponentialBackoff(
            base=config.backoff_base,
            cap=config.backoff_cap,
            jitter="full",
            rng=rng or random.Random(),
        )
        self.breaker = CircuitBreaker(
            threshold=config.breaker_threshold,
            cooldown=config.breaker_cooldown,
            on_change=self._breaker_changed,
        )
        self.state = ConnectionState.STOPPED
        self.cursor: int | None = None  # as last committed by the sink
        self.newest_event_us: int | None = None
        self.apply_lag_seconds: float | None = None
        self.last_frame_at: float | None = None
        self.connected_since: float | None = None
        self.last_reason: Reason | None = None
        self.frames = 0
        self.batches = 0
        self.events: Counter[str] = Counter()
        self.reconnects: Counter[str] = Counter()
        self.gaps = 0
        self.delays: list[float] = []  # backoff delays taken, newest last (bounded)
        self._gap_reported_for: int | None = None
        # On a fresh database there is no stored cursor: the first connection
        # tails live, and later reconnects resume from when it started, so a
        # drop before the first commit cannot open a silent gap.
        self._live_floor_us: int | None = None
        self._stop = trio.Event()
        self._waiting: trio.CancelScope | None = None
        self._set_state(ConnectionState.STOPPED)
        self._breaker_changed(BreakerState.CLOSED, BreakerState.CLOSED)
        metrics.add_callback(f"{self._prefix}_lag:{config.name}", self._collect_lag)

    # -- supervised child ---------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Consume until cancelled or asked to stop. Only sink bugs escape."""
        self._stop = trio.Event()
        task_status.started()
        try:
            while not self._stop.is_set():
                if self.breaker.state is BreakerState.OPEN:
                    self._set_state(ConnectionState.BREAKER_OPEN)
                    self._log.warning(
                        "jetstream circuit breaker open; pausing",
                        retry_after_s=round(self.breaker.retry_after(), 3),
                        failures=self.breaker.consecutive_failures,
                    )
                await self._interruptible(self.breaker.wait_until_allowed)
                if self._stop.is_set():
                    break
                reason = await self._connect_once()
                self._record_end(reason)
                if reason is Reason.SHUTDOWN or self._stop.is_set():
                    break
                if self.breaker.state is BreakerState.OPEN:
                    continue  # the cooldown, not the backoff, decides when to dial
                delay = self.backoff.next_delay()
                self.delays = [*self.delays[-99:], delay]
                self._set_state(ConnectionState.BACKOFF)
                self._log.info(
                    "jetstream reconnecting", reason=str(reason), delay_s=round(delay, 3)
                )
                await self._interruptible(partial(trio.sleep, delay))
        finally:
            self._set_state(ConnectionState.STOPPED)

    def request_stop(self) -> None:
        """Stop reading, apply what was already received, then return from ``run``."""
        self._stop.set()
        if self._waiting is not None:
            self._waiting.cancel()

    def lag_seconds(self) -> float | None:
        """Now minus the newest applied event: grows while nothing is applied (outage)."""
        if self.newest_event_us is None:
            return None
        return max(0.0, clock.wall_now() - self.newest_event_us / 1_000_000)

    def health(self) -> dict[str, Any]:
        now = clock.monotonic()
        lag = self.lag_seconds()
        return {
            "state": str(self.state),
            "breaker": str(self.breaker.state),
            "breakerRetryAfterSeconds": round(self.breaker.retry_after(), 3),
            "endpoint": _display_url(self.config.url),
            "cursor": self.cursor,
            "kind": self.config.kind,
            "cursorTime": None if self._firehose else _iso(self.cursor),
            "lastEventTime": _iso(self.newest_event_us),
            "lagSeconds": None if lag is None else round(lag, 3),
            "applyLagSeconds": (
                None if self.apply_lag_seconds is None else round(self.apply_lag_seconds, 3)
            ),
            "secondsSinceLastFrame": (
                None if self.last_frame_at is None else round(now - self.last_frame_at, 3)
            ),
            "connectedSeconds": (
                None if self.connected_since is None else round(now - self.connected_since, 3)
            ),
            "frames": self.frames,
            "batches": self.batches,
            "events": dict(self.events),
            "reconnects": dict(self.reconnects),
            "lastDisconnect": None if self.last_reason is None else str(self.last_reason),
            "gaps": self.gaps,
        }

    # -- one connection -----------------------------------------------------------------
    async def _connect_once(self) -> Reason:
        self._set_state(ConnectionState.CONNECTING)
        try:
            stored = await self.sink.load_cursor()
        except DatabaseError as exc:
            self.breaker.release()
            self._log.warning(
                "jetstream cannot read its cursor; database unavailable", error=repr(exc)
            )
            return Reason.DATABASE
        self.cursor = stored
        if self._firehose:
            cursor = stored
            url = subscribe_repos_url(self.config.url, cursor)
        else:
            base = stored if stored is not None else self._live_floor_us
            self._check_gap(base)
            cursor = resume_cursor(base, self.config.rewind_seconds)
            url = subscribe_url(self.config.url, self.config.collections, cursor)
        session = _Session()
        self._log.info(
            "jetstream connecting", endpoint=_display_url(self.config.url), cursor=cursor
        )
        try:
            async with self._opener(url) as ws:
                self.connected_since = clock.monotonic()
                self._set_state(ConnectionState.CONNECTED)
                if stored is None and self._live_floor_us is None:
                    self._live_floor_us = _now_us()
                self._log.info("jetstream connected", cursor=cursor)
                await self._pump(ws, session)
        except trio_websocket.ConnectionRejected as exc:
            session.reason = session.reason or Reason.REJECTED
            self._log.warning("jetstream refused the connection", status=exc.status_code)
        except (
            trio_websocket.HandshakeError,
            trio_websocket.ConnectionClosed,
            trio.BrokenResourceError,
            OSError,
        ) as exc:
            session.reason = session.reason or Reason.CONNECT_FAILED
            self._log.warning("jetstream connection failed", error=repr(exc))
        finally:
            connected_for = (
                None if self.connected_since is None else clock.monotonic() - self.connected_since
            )
            self.connected_since = None
        if connected_for is not None and connected_for >= self.config.stable_after:
            self.backoff.reset()
        # A session that proved alive already reported success to the breaker.
        if not session.alive:
            if session.reason in (Reason.DATABASE, Reason.SHUTDOWN):
                self.breaker.release()  # says nothing about Jetstream
            else:
                self.breaker.record_failure()
        return session.reason or Reason.CLOSED

    async def _pump(self, ws: trio_websocket.WebSocketConnection, session: _Session) -> None:
        send, recv = trio.open_memory_channel[Frame](self.config.queue_frames)
        async with single_errors(), trio.open_nursery() as nursery:
            nursery.start_soon(self._apply_loop, recv, session, nursery.cancel_scope)
            async with send, trio.open_nursery() as io:
                io.start_soon(self._read_loop, ws, send, session, io.cancel_scope)
                io.start_soon(self._ping_loop, ws, session, io.cancel_scope)
                io.start_soon(self._idle_watch, session, io.cancel_scope)
                io.start_soon(self._stop_watch, session, io.cancel_scope)
            # ``send`` is closed: the applier drains what was received, then ends.

    async def _read_loop(
        self,
        ws: trio_websocket.WebSocketConnection,
        send: trio.MemorySendChannel[Frame],
        session: _Session,
        scope: trio.CancelScope,
    ) -> None:
        while True:
            session.waiting_since = clock.monotonic()
            try:
                data = await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                reason = _close_reason(exc.reason)
                session.end(reason, scope)
                if reason is Reason.TOO_BIG:
                    # Resuming replays the same frame: ingestion is stuck
                    # until the limit is raised, so say so loudly.
                    self._log.error(
                        "jetstream frame larger than JETSTREAM_MAX_MESSAGE_BYTES; "
                        "raise it or ingestion cannot pass this event",
                        limit=self.config.max_message_bytes,
                    )
                else:
                    self._log.info("jetstream connection closed", close=repr(exc.reason))
                return
            session.waiting_since = None
            now = clock.monotonic()
            self.last_frame_at = now
            self.frames += 1
            self._m.frames.inc()
            self._mark_alive(session)
            frame = Frame(data, now)
            try:
                send.send_nowait(frame)
            except trio.WouldBlock:
                session.stalled = True
                try:
                    await send.send(frame)
                finally:
                    session.stalled = False
                    session.stall_ended_at = clock.monotonic()

    async def _idle_watch(self, session: _Session, scope: trio.CancelScope) -> None:
        """Reconnect when the reader has waited on the socket for ``idle_timeout``.

        One task instead of a cancel scope per frame: the reader only stamps
        when it starts waiting, which keeps the per-frame cost down.
        """
        timeout = self.config.idle_timeout
        while True:
            since = session.waiting_since
            if since is None:
                await trio.sleep(timeout / 10)  # busy or backpressured: look again soon
                continue
            remaining = since + timeout - clock.monotonic()
            if remaining <= 0:
                self._log.warning("jetstream idle; reconnecting", idle_s=timeout)
                session.end(Reason.IDLE_TIMEOUT, scope)
                return
            await trio.sleep(remaining)

    async def _ping_loop(
        self, ws: trio_websocket.WebSocketConnection, session: _Session, scope: trio.CancelScope
    ) -> None:
        sequence = 0
        while True:
            await trio.sleep(self.config.ping_interval)
            sequence += 1
            sent_at = clock.monotonic()
            try:
                with trio.move_on_after(self.config.pong_timeout) as deadline:
                    await ws.ping(b"coves-%d" % sequence)
            except trio_websocket.ConnectionClosed:
                return  # the reader reports the close
            if not deadline.cancelled_caught:
                self._mark_alive(session)
                continue
            if session.stalled or session.stall_ended_at >= sent_at:
                # We were not reading, so the pong may be queued behind frames.
                continue
            self._log.warning(
                "jetstream pong deadline missed; reconnecting", deadline_s=self.config.pong_timeout
            )
            session.end(Reason.PONG_TIMEOUT, scope)
            return

    async def _stop_watch(self, session: _Session, scope: trio.CancelScope) -> None:
        await self._stop.wait()
        session.end(Reason.SHUTDOWN, scope)

    async def _apply_loop(
        self,
        recv: trio.MemoryReceiveChannel[Frame],
        session: _Session,
        scope: trio.CancelScope,
    ) -> None:
        size, window = self.config.batch_size, self.config.batch_ms / 1000.0

        async def batches() -> AsyncIterator[list[Frame]]:
            while True:
                try:
                    first = await recv.receive()
                except trio.EndOfChannel:
                    return
                # The deadline counts from the frame's arrival, so a frame that
                # queued behind a slow apply is not held back any further.
                batch, ended = await _fill_batch(recv, [first], size, first.received_at + window)
                yield batch
                if ended:
                    return

        async with recv:
            try:
                # The next batch is parsed (or decoded and verified) while this one commits.
                await run_pipelined(self.sink, batches(), self._applied)
            except DatabaseError as exc:
                self._log.warning(
                    "jetstream pausing: database unavailable; unapplied frames dropped",
                    queued_frames=recv.statistics().current_buffer_used,
                    error=repr(exc),
                )
                session.end(Reason.DATABASE, scope)

    def _applied(self, batch: Sequence[Frame], result: BatchResult, seconds: float) -> None:
        self._m.apply_seconds.observe(seconds)
        self.batches += 1
        self._m.batches.inc()
        self._m.batch_events.observe(len(batch))
        self.events.update(
            applied=result.applied, skipped=result.skipped, dead_lettered=result.dead_lettered
        )
        if result.cursor is not None:
            self.cursor = result.cursor
        if result.newest_event_us is not None:
            self.newest_event_us = result.newest_event_us
            self.apply_lag_seconds = max(0.0, clock.wall_now() - result.newest_event_us / 1_000_000)
            self._m.apply_lag.set(self.apply_lag_seconds)
            self._m.last_event.set(result.newest_event_us / 1_000_000)

    # -- bookkeeping --------------------------------------------------------------------
    def _mark_alive(self, session: _Session) -> None:
        if not session.alive:
            session.alive = True
            self.breaker.record_success()

    def _record_end(self, reason: Reason) -> None:
        self.last_reason = reason
        if reason is Reason.SHUTDOWN:
            return
        self.reconnects[str(reason)] += 1
        self._m.reconnects(str(reason)).inc()

    def _check_gap(self, stored: int | None) -> None:
        gap = detect_gap(stored, _now_us(), self.config.replay_window)
        if gap is None or self._gap_reported_for == stored:
            return
        self._gap_reported_for = stored
        self.gaps += 1
        self._m.gaps.inc()
        self._m.gap_seconds.inc(gap.seconds)
        self._log.error(
            "jetstream cursor is older than the replay window; events were lost",
            cursor=stored,
            cursor_time=_iso(stored),
            oldest_available=_iso(gap.oldest_available_us),
            lost_s=round(gap.seconds, 1),
        )

    async def _interruptible(self, wait: Callable[[], Awaitable[object]]) -> None:
        """Await ``wait()`` unless (or until) a stop is requested."""
        with trio.CancelScope() as scope:
            self._waiting = scope
            if self._stop.is_set():
                scope.cancel()
            try:
                await wait()
            finally:
                self._waiting = None

    def _collect_lag(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{self._prefix}_lag_seconds",
            "now minus the time_us of the newest applied event",
            labels=[] if self._source is None else ["source"],
        )
        lag = self.lag_seconds()
        if lag is not None:
            family.add_metric([] if self._source is None else [self._source], lag)
        return [family]

    def _set_state(self, state: ConnectionState) -> None:
        self.state = state
        for each in ConnectionState:
            self._m.state(str(each)).set(1.0 if each is state else 0.0)

    def _breaker_changed(self, old: BreakerState, new: BreakerState) -> None:
        if old is not new:
            self._log.info("jetstream breaker", old=str(old), new=str(new))
        for each in BreakerState:
            self._m.breaker(str(each)).set(1.0 if each is new else 0.0)


async def _fill_batch(
    recv: trio.MemoryReceiveChannel[Frame], batch: list[Frame], size: int, deadline: float
) -> tuple[list[Frame], bool]:
    """Up to ``size`` frames: all already waiting first, then more until ``deadline``.

    Taking what is queued before looking at the clock keeps batches full
    under load even when the first frame waited behind a slow apply.
    Returns the batch and whether the channel has ended.
    """
    while len(batch) < size:
        try:
            batch.append(recv.receive_nowait())
        except trio.WouldBlock:
            break
        except trio.EndOfChannel:
            return batch, True
    with trio.move_on_at(deadline):
        while len(batch) < size:
            try:
                batch.append(await recv.receive())
            except trio.EndOfChannel:
                return batch, True
    return batch, False


def _close_reason(reason: trio_websocket.CloseReason | None) -> Reason:
    if reason is None or reason.code == 1006:
        return Reason.ABNORMAL
    if reason.code in (1000, 1001):
        return Reason.CLOSED
    if reason.code == 1009:
        return Reason.TOO_BIG
    return Reason.CLOSED_ERROR


def _now_us() -> int:
    return int(clock.wall_now() * 1_000_000)


def _iso(time_us: int | None) -> str | None:
    if time_us is None:
        return None
    return datetime.fromtimestamp(time_us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def _display_url(url: str) -> str:
    """The endpoint without credentials or query, safe for logs and _health."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- wiring -------------------------------------------------------------------------------
def firehose_children(
    settings: Settings,
    sink_factory: Callable[[str], Sink],
    *,
    metrics: Metrics,
    opener: Opener | None = None,
) -> list[ChildSpec]:
    """One consumer child per ``FIREHOSE_URL`` entry, each with its own seq cursor.

    ``sink_factory(url)`` builds the source's sink (a
    :class:`~coves.ingest.firehose_sink.FirehoseSink` over the shared indexer).
    """
    specs = []
    for url in settings.firehose_urls:
        config = ConsumerConfig.from_settings(settings, firehose_url=url)
        consumer = JetstreamConsumer(sink_factory(url), config, opener=opener, metrics=metrics)
        specs.append(
            ChildSpec(
                config.name,
                consumer.run,
                request_stop=consumer.request_stop,
                grace=settings.shutdown_grace_seconds,
                critical=False,
                details=consumer.health,
            )
        )
    return specs


def jetstream_child(
    settings: Settings,
    sink_factory: Callable[[], Sink],
    *,
    metrics: Metrics,
    opener: Opener | None = None,
) -> ChildSpec | None:
    """The consumer as a supervised child, or None when disabled (the sink is then not built)."""
    if not settings.jetstream_enabled:
        return None
    consumer = JetstreamConsumer(
        sink_factory(), ConsumerConfig.from_settings(settings), opener=opener, metrics=metrics
    )
    return ChildSpec(
        "jetstream",
        consumer.run,
        request_stop=consumer.request_stop,
        grace=settings.shutdown_grace_seconds,
        # Reads keep working without ingestion; staleness shows in details.
        critical=False,
        details=consumer.health,
    )
