"""``coves serve``: build the supervised tree and run it until a signal.

Start order (and the reverse, shutdown order): embedded PostgreSQL (when no
DATABASE_URL), the database pool, then the long-running services, with the
XRPC server last so it only accepts requests once everything it depends on
is up, and stops accepting first.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import trio

from coves.config import Settings
from coves.context import AppContext, build_context
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres
from coves.db.migrate import migrate
from coves.logs import get_logger
from coves.metrics import Metrics
from nurseries.supervisor import ChildSpec, RestartPolicy, Supervisor, open_supervisor

log = get_logger(__name__)


# An unreachable database at start-up is retried for a few seconds, then the
# process exits non-zero: a supervisor (systemd) restarting us is more
# visible than a server that answers 503 forever.
DATABASE_POLICY = RestartPolicy(base_delay=0.5, max_delay=5.0, max_failures=5, failure_window=60.0)


def capability_children(ctx: AppContext) -> list[ChildSpec]:
    """The children capabilities contribute, in start order (the XRPC server comes after).

    Each child gets the parts of the context it uses, never the context or the
    runtime itself; a factory returns None when configuration disables it.
    Add one line per capability.
    """
    from functools import cache

    from coves.ingest.build import production_firehose_sink, production_indexer
    from nurseries.community_refresher import community_refresher_child
    from nurseries.didweb import didweb_child
    from nurseries.handles import handles_child
    from nurseries.jetstream import firehose_children, jetstream_child

    settings = ctx.settings
    if ctx.identity is None or ctx.didweb is None:
        raise ValueError("the supervised children need a context from build_context")
    # One indexer for every stream source (Jetstream, each firehose): each source
    # keeps its own cursor and session in it.
    indexer = cache(lambda: production_indexer(ctx))
    specs = [
        didweb_child(
            ctx.db,
            ctx.identity,
            ctx.didweb,
            instance_did=settings.instance_did,
            skip_verification=settings.skip_did_web_verification,
            metrics=ctx.metrics,
        ),
        handles_child(ctx.db, ctx.identity),
        community_refresher_child(
            ctx.hosting,
            metrics=ctx.metrics,
            ahead=settings.community_refresh_ahead_seconds,
            enabled=settings.community_refresh_enabled,
        ),
        # The consumer last: its hooks feed the verifier and the identity caches.
        jetstream_child(settings, indexer, metrics=ctx.metrics),
        *firehose_children(
            settings,
            lambda url: production_firehose_sink(ctx, indexer(), url),
            metrics=ctx.metrics,
        ),
    ]
    return [spec for spec in specs if spec is not None]


@dataclass
class Runtime:
    """What ``run_server`` reports once serving: for tests and embedding, not for children."""

    settings: Settings
    supervisor: Supervisor
    metrics: Metrics
    db: Database | None = None
    ctx: AppContext | None = None
    bound: list[str] = field(default_factory=list)


async def _database_child(
    db: Database, *, task_status: trio.TaskStatus[Database] = trio.TASK_STATUS_IGNORED
) -> None:
    await db.probe()
    await db.open()
    try:
        task_status.started(db)
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await db.close()


async def run_server(
    settings: Settings,
    *,
    migrate_on_start: bool = True,
    task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED,
) -> None:
    metrics = Metrics()

    def count_restart(name: str) -> None:
        metrics.child_restarts.labels(name).inc()

    async with open_supervisor(on_restart=count_restart) as supervisor:
        runtime = Runtime(settings, supervisor, metrics)
        conninfo: str
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            conninfo = await supervisor.start(
                ChildSpec("postgres", embedded.run, RestartPolicy(max_failures=3), grace=30.0)
            )
        else:
            conninfo = settings.database_url.reveal()
        db = Database(
            conninfo,
            pool_size=settings.db_pool_size,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        runtime.db = await supervisor.start(
            ChildSpec(
                "database",
                lambda task_status: _database_child(db, task_status=task_status),
                DATABASE_POLICY,
            )
        )
        await check_database(db, settings, migrate_on_start=migrate_on_start)
        ctx = build_context(settings, db, metrics=metrics, health=supervisor)
        runtime.ctx = ctx
        install_pool_metrics(metrics, db, supervisor)

        for spec in capability_children(ctx):
            await supervisor.start(spec)

        from coves.xrpc.app import create_app
        from nurseries.xrpc_server import XRPCServer

        server = XRPCServer(
            create_app(ctx),
            settings.host,
            settings.port,
            grace=settings.shutdown_grace_seconds,
        )
        runtime.bound = await supervisor.start(
            ChildSpec(
                "xrpc",
                server.run,
                request_stop=server.request_stop,
                grace=settings.shutdown_grace_seconds + 1.0,
            )
        )
        task_status.started(runtime)
        await _wait_for_signal()
        log.info("shutdown requested; draining")


class RefusedToStart(Exception):
    """Coves cannot serve as configured; the message says why, in one line."""


async def check_database(db: Database, settings: Settings, *, migrate_on_start: bool) -> None:
    """The schema is current and the encryption keys open what the database holds."""
    from coves.db.migrate import MigrationError, require_current_schema
    from coves.rotation import SealedDataError, check_sealed_data

    try:
        if migrate_on_start:
            await migrate(db)
        else:
            await require_current_schema(db)
        await check_sealed_data(db, settings.secret_box())
    except (MigrationError, SealedDataError) as exc:
        raise RefusedToStart(str(exc)) from None


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("signal received", signal=signal.Signals(signum).name)
            return


def install_pool_metrics(metrics: Metrics, db: Database, supervisor: Supervisor) -> None:
    from prometheus_client.core import GaugeMetricFamily

    def collect() -> list[GaugeMetricFamily]:
        stats = db.stats()
        in_use = GaugeMetricFamily("coves_db_pool_in_use", "pool connections in use")
        in_use.add_metric([], stats.in_use)
        waiting = GaugeMetricFamily("coves_db_pool_waiting", "tasks waiting for a connection")
        waiting.add_metric([], stats.waiting)
        size = GaugeMetricFamily("coves_db_pool_size", "pool connections open")
        size.add_metric([], stats.size)
        up = GaugeMetricFamily(
            "coves_child_up", "1 when a supervised child is running", labels=["child"]
        )
        for name, state in supervisor.states.items():
            up.add_metric([name], 1.0 if state.healthy else 0.0)
        return [in_use, waiting, size, up]

    metrics.add_callback("coves_db_pool", collect)
