"""The XRPC server child: Hypercorn's trio worker serving the Quart app."""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson
import trio
from hypercorn.config import Config
from hypercorn.events import RawData
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import serve
from hypercorn.trio.task_group import TaskGroup
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, ASGISendEvent, Scope
from quart_trio import QuartTrio

from coves.admission import ARRIVED, LoopLag
from coves.clock import monotonic
from coves.db import fail_fast_on_outage
from coves.excgroups import first_leaf
from coves.logs import get_logger
from coves.startup import RefusedToStart

log = get_logger(__name__)

# What Hypercorn's HTTP/1.1 parser refuses before any application code runs.
_PROTOCOL_ERRORS = {
    400: ("InvalidRequest", "malformed HTTP request"),
    404: ("NotFound", "unknown server name"),
    408: ("RequestTimeout", "the request took too long to arrive"),
    413: ("PayloadTooLarge", "request is too large"),
    414: ("InvalidRequest", "request target is too long"),
    431: ("RequestHeadersTooLarge", "request headers (with the query string) are too large"),
    501: ("NotImplemented", "unsupported transfer encoding"),
}


def protocol_error_body(status: int) -> bytes:
    name, message = _PROTOCOL_ERRORS.get(status, ("InvalidRequest", "bad request"))
    return orjson.dumps({"error": name, "message": message})


async def _send_xrpc_error_response(self: H11Protocol, status_code: int) -> None:
    """Hypercorn's own error responses (431, 400 from h11, 501 for an unknown
    transfer-encoding) have an empty body; every answer a client sees from
    Coves is ``{"error", "message"}``. Hypercorn has no hook for these, so its
    one method that writes them is replaced (tests/faults/test_wire.py checks
    each status on a real socket, so a Hypercorn upgrade that moves it fails)."""
    body = protocol_error_body(status_code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *self.config.response_headers("h11"),
    ]
    # One write, no checkpoint between the parts: when the body of a request the
    # application already has fails to parse (a bad chunk), the application answers
    # too, and its response must not slip in between our headers and our body.
    events = (h11.Response(status_code=status_code, headers=headers), h11.Data(data=body))
    try:
        data = b"".join(
            self.connection.send(event) or b"" for event in (*events, h11.EndOfMessage())
        )
    except h11.LocalProtocolError:
        if self.connection.their_state != h11.ERROR:
            raise
        return
    await self.send(RawData(data=data))


H11Protocol._send_error_response = _send_xrpc_error_response  # type: ignore[method-assign]

_check_protocol = H11Protocol._check_protocol


async def _check_protocol_without_h2c(self: H11Protocol, event: h11.Request) -> None:
    """Serve ``Upgrade: h2c`` requests as the HTTP/1.1 requests they also are.

    RFC 9113 deprecates the h2c upgrade, and Hypercorn's took a connection whose
    client left after the 101 into a state its graceful shutdown waited on for
    ever (tests/faults/test_fuzz_wire.py). Prior-knowledge HTTP/2 is untouched."""
    headers = [(n, v) for n, v in event.headers if n.lower() != b"upgrade"]
    if len(headers) != len(event.headers):
        event = h11.Request(
            method=event.method,
            target=event.target,
            headers=headers,
            http_version=event.http_version,
        )
    await _check_protocol(self, event)


H11Protocol._check_protocol = _check_protocol_without_h2c  # type: ignore[method-assign]

_spawn_app = TaskGroup.spawn_app


async def _spawn_app_stamped(
    self: TaskGroup,
    app: AppWrapper,
    config: Config,
    scope: Scope,
    send: Callable[[ASGISendEvent | None], Awaitable[None]],
) -> Callable[[ASGIReceiveEvent], Awaitable[None]]:
    """Stamp each HTTP request with the time it was parsed, before its task waits
    in the run queue: admission control counts that wait against the queue
    timeout (``coves.admission``). The application's own first line would come
    only after the wait. Hypercorn has no hook here; tests/foundation/
    test_admission.py checks the stamp arrives over a real socket."""
    if scope["type"] == "http":
        extensions: dict[str, Any] = scope.setdefault("extensions", {})
        extensions[ARRIVED] = monotonic()
    return await _spawn_app(self, app, config, scope, send)


TaskGroup.spawn_app = _spawn_app_stamped  # type: ignore[method-assign]


@dataclass
class XRPCServer:
    app: QuartTrio
    host: str
    port: int
    grace: float = 10.0
    # A listening socket inherited from the supervisor (several workers, one port).
    fd: int | None = None
    bound: list[str] = field(default_factory=list)
    _stop: trio.Event = field(default_factory=trio.Event)

    def request_stop(self) -> None:
        """Stop accepting connections; in-flight requests get ``grace`` seconds."""
        self._stop.set()

    def config(self) -> Config:
        config = Config()
        if self.fd is not None:
            config.bind = [f"fd://{self.fd}"]
        else:
            config.bind = [
                f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            ]
        config.graceful_timeout = self.grace
        config.keep_alive_timeout = 75
        config.keep_alive_max_requests = 100_000
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.backlog = 1024
        return config

    async def run(
        self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._stop = trio.Event()
        # Every connection task inherits this context: database calls made while
        # serving a request give up with a 503 when the database stops answering.
        try:
            with fail_fast_on_outage():
                await self._serve(task_status)
        except BaseException as exc:
            refused = _cannot_listen(exc)
            if refused is None:
                raise
            raise RefusedToStart(
                f"cannot listen on {self.host}:{self.port}: {refused.strerror}"
            ) from None

    async def _serve(self, task_status: trio.TaskStatus[list[str]]) -> None:
        async with trio.open_nursery() as nursery:
            lag = loop_lag_of(self.app)
            if lag is not None:
                # Measures this process's event loop for admission control while serving.
                await nursery.start(lag.run)
            binds: list[str] = await nursery.start(self._hypercorn, nursery.cancel_scope)
            self.bound = binds
            log.info("xrpc server listening", binds=binds)
            task_status.started(binds)

    async def _hypercorn(
        self, done: trio.CancelScope, *, task_status: trio.TaskStatus[list[str]]
    ) -> None:
        await serve(
            self.app, self.config(), shutdown_trigger=self._stop.wait, task_status=task_status
        )
        done.cancel()  # served and drained: the lag monitor stops too


def loop_lag_of(app: QuartTrio) -> LoopLag | None:
    """The loop-lag monitor of the XRPC dispatcher in front of ``app``, if any."""
    lag = getattr(app.asgi_app, "loop_lag", None)
    return lag if isinstance(lag, LoopLag) else None


_LISTEN_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _cannot_listen(exc: BaseException) -> OSError | None:
    """The bind error inside ``exc`` (Hypercorn raises it from a nursery), if any."""
    return first_leaf(exc, OSError, lambda e: e.errno in _LISTEN_ERRORS)
