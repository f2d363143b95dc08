"""The read API as ``bench/read_api.py`` serves it: the real app on the real server.

Same application (``create_app``), same Hypercorn trio worker and config
(``nurseries.xrpc_server.XRPCServer``) as ``coves serve``, on the bench
database built by ``bench/gen_readdb.py``. One difference: authentication is
a bench authenticator (``Authorization: Bearer bench:<did>``), because the
benchmark measures the read path, not token verification (the identity
workstream's verifiers have their own benchmarks).

    .venv/bin/python -m bench.read_server --data-dir /tmp/coves-readdb --port 8090
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import trio

from bench.gen_readdb import DEFAULT_DIR
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.config import load_settings
from coves.context import AppContext
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres, stop_blocking
from coves.db.migrate import migrate
from coves.interpreter import apply_switch_interval
from coves.lexicon import LexiconRegistry
from coves.logs import configure_logging
from coves.xrpc.app import create_app
from nurseries.xrpc_server import XRPCServer

PREFIX = "Bearer bench:"


class BenchAuthenticator:
    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        if not header.startswith(PREFIX):
            raise AuthFailure("bad_token", "bench tokens only")
        return Viewer(did=header[len(PREFIX) :], method="service_auth")


async def serve(data_dir: Path, port: int, conninfo: str) -> None:
    settings = load_settings({**os.environ, "COVES_DATA_DIR": str(data_dir)}, dotenv=None)
    configure_logging(settings.log_level, "console")
    db = Database(
        conninfo,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    await db.open()
    try:
        await migrate(db)
        ctx = AppContext(
            settings=settings,
            db=db,
            authenticator=BenchAuthenticator(),
            lexicons=LexiconRegistry.load(),
        )
        server = XRPCServer(create_app(ctx), "127.0.0.1", port, grace=2.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            # The benchmark stops us with SIGTERM: drain, then let main() stop
            # PostgreSQL (a default SIGTERM would orphan it).
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    server.request_stop()
                    break
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    # As ``coves serve`` does before it starts the event loop.
    settings = load_settings({**os.environ, "COVES_DATA_DIR": str(args.data_dir)}, dotenv=None)
    apply_switch_interval(settings.switch_interval_seconds)
    pg = EmbeddedPostgres(args.data_dir, durable=False)
    proc = pg.start_blocking()
    try:
        trio.run(serve, args.data_dir, args.port, pg.conninfo())
    finally:
        stop_blocking(proc)


if __name__ == "__main__":
    main()
