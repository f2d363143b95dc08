"""The XRPC server child: Hypercorn's trio worker serving the Quart app."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

from coves.logs import get_logger

log = get_logger(__name__)


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
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                partial(serve, self.app, self.config(), shutdown_trigger=self._stop.wait)
            )
            self.bound = binds
            log.info("xrpc server listening", binds=binds)
            task_status.started(binds)
