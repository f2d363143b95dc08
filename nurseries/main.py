"""``coves serve`` in one process: build the supervised tree and run it until a signal.

Start order (and the reverse, shutdown order): embedded PostgreSQL (when no
DATABASE_URL), the database pools, then the long-running services, with the
XRPC server last so it only accepts requests once everything it depends on
is up, and stops accepting first.

A process has a role: ``all`` (everything, the single-process mode),
``api`` (the XRPC server and what it needs) or ``ingest`` (the consumer,
the identity upkeep and housekeeping). ``coves serve --workers N`` runs one
``ingest`` and N ``api`` processes under nurseries/workers.py, each of them
this function; every role keeps a heartbeat, listens for other processes'
cache invalidations and sweeps what grows.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from coves.config import Settings
from coves.context import AppContext, build_context
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres
from coves.db.migrate import migrate
from coves.db.observe import QueryObserver
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.startup import RefusedToStart
from nurseries.supervisor import ChildSpec, RestartPolicy, Supervisor, open_supervisor

log = get_logger(__name__)

ROLES = ("all", "api", "ingest")

# An unreachable database at start-up is retried for a few seconds, then the
# process exits non-zero: a supervisor (systemd) restarting us is more
# visible than a server that answers 503 forever.
DATABASE_POLICY = RestartPolicy(base_delay=0.5, max_delay=5.0, max_failures=5, failure_window=60.0)


def capability_children(ctx: AppContext, *, ingest_db: Database | None = None) -> list[ChildSpec]:
    """The children capabilities contribute, in start order (the XRPC server comes after).

    Each child gets the parts of the context it uses, never the context or the
    runtime itself; a factory returns None when configuration disables it.
    Add one line per capability. ``ingest_db`` is the indexer's own pool.
    """
    from functools import cache

    from coves.ingest.build import production_firehose_sink, production_indexer
    from nurseries.community_refresher import community_refresher_child
    from nurseries.didweb import didweb_child
    from nurseries.handles import handles_child
    from nurseries.jetstream import firehose_children, jetstream_child
    from nurseries.opsfacts import ops_facts_child
    from nurseries.pdshealth import pds_health_child

    settings = ctx.settings
    if ctx.identity is None or ctx.didweb is None:
        raise ValueError("the supervised children need a context from build_context")
    # One indexer for every stream source (Jetstream, each firehose): each source
    # keeps its own cursor and session in it.
    indexer = cache(lambda: production_indexer(ctx, db=ingest_db))
    specs = [
        didweb_child(
            ctx.db,
            ctx.identity,
            ctx.didweb,
            instance_did=settings.instance_did,
            skip_verification=settings.skip_did_web_verification,
            metrics=ctx.metrics,
            on_changed=ctx.invalidation.changed,
        ),
        handles_child(ctx.db, ctx.identity, on_changed=ctx.invalidation.changed),
        ops_facts_child(
            ctx.db,
            ctx.metrics,
            data_dir=settings.data_dir,
            backup_dir=settings.effective_backup_dir,
        ),
        pds_health_child(
            settings.pds_url,
            interval=settings.pds_health_interval_seconds,
            timeout=settings.pds_health_timeout_seconds,
            metrics=ctx.metrics,
        ),
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
            lambda url: production_firehose_sink(ctx, indexer(), url, db=ingest_db),
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
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.watch)  # outage detection: fast 503s, automatic recovery
            task_status.started(db)
    finally:
        with trio.CancelScope(shield=True):
            await db.close()


def database_spec(name: str, db: Database) -> ChildSpec:
    return ChildSpec(
        name,
        lambda task_status: _database_child(db, task_status=task_status),
        DATABASE_POLICY,
    )


async def run_server(
    settings: Settings,
    *,
    migrate_on_start: bool = True,
    role: str = "all",
    listen_fd: int | None = None,
    process_name: str | None = None,
    metrics: Metrics | None = None,
    on_ready: Callable[[], None] | None = None,
    lifeline_fd: int | None = None,
    task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one process of the given role until SIGINT/SIGTERM.

    ``listen_fd`` is a listening socket inherited from the multi-process
    supervisor (else the server binds ``settings.host:port``); ``on_ready``
    runs once everything is started (the supervisor's readiness pipe, the
    garbage collector's freeze).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    metrics = metrics if metrics is not None else Metrics()
    serves_api = role in ("all", "api")
    ingests = role in ("all", "ingest")

    def count_restart(name: str) -> None:
        metrics.child_restarts.labels(name).inc()

    # The signals stop start-up too; the supervisor then drains what had started.
    async with open_supervisor(on_restart=count_restart) as supervisor, until_signal(lifeline_fd):
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
            pool_size=settings.db_pool_size if serves_api else settings.ingest_db_pool_size,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        db.instrument(QueryObserver(metrics, slow_ms=settings.db_slow_query_ms))
        runtime.db = await supervisor.start(database_spec("database", db))
        ingest_db: Database | None = None
        if ingests and serves_api and (settings.jetstream_enabled or settings.firehose_urls):
            # The indexer's own connections: reads queued on the read pool's
            # limiter must never stand between ingestion and the database.
            ingest_db = Database(
                conninfo,
                pool_size=settings.ingest_db_pool_size,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                application_name="coves-ingest",
            )
            await supervisor.start(database_spec("ingest-database", ingest_db))
        await check_database(db, settings, migrate_on_start=migrate_on_start)
        ctx = build_context(settings, db, metrics=metrics, health=supervisor)
        runtime.ctx = ctx
        install_pool_metrics(metrics, db, supervisor)

        from nurseries.invalidation import invalidation_child
        from nurseries.upkeep import heartbeat_child, housekeeping_child

        # Other processes' cache drops, before anything is cached here.
        await supervisor.start(invalidation_child(conninfo, ctx.invalidation))
        if ingests:
            for spec in capability_children(ctx, ingest_db=ingest_db):
                await supervisor.start(spec)
        await supervisor.start(
            housekeeping_child(db, snapshot_max_rows=settings.feed_snapshot_max_rows)
        )
        await supervisor.start(
            heartbeat_child(
                db,
                supervisor,
                name=process_name or role,
                role=role,
                metrics=metrics,
                extra=lambda: _process_facts(ctx, db),
            )
        )

        if serves_api:
            runtime.bound = await _start_api(supervisor, ctx, role=role, listen_fd=listen_fd)
        task_status.started(runtime)
        if on_ready is not None:
            on_ready()
        await trio.sleep_forever()  # until a signal (or the lifeline) cancels the block


def _process_facts(ctx: AppContext, db: Database) -> dict[str, object]:
    """What this process's heartbeat tells the rest of the deployment besides its children."""
    stats = db.stats()
    return {
        "pool": {"size": stats.size, "inUse": stats.in_use, "waiting": stats.waiting},
        "responseCache": {"entries": len(ctx.response_cache), "bytes": ctx.response_cache.bytes},
        "readCaches": ctx.read.sizes(),
    }


async def _start_api(
    supervisor: Supervisor, ctx: AppContext, *, role: str, listen_fd: int | None
) -> list[str]:
    """The XRPC server (last: it accepts only once everything else runs)."""
    from coves.xrpc.app import create_app
    from coves.xrpc.ratelimit import RateLimiter, SharedStore, default_limit_classes
    from nurseries.upkeep import ratelimit_sync_child
    from nurseries.xrpc_server import XRPCServer

    settings = ctx.settings
    limiter = None
    if role == "api" and settings.rate_limit_sync_seconds > 0:
        # Other API processes serve the same clients: count together.
        store = SharedStore()
        limiter = RateLimiter(default_limit_classes(settings), store)
        await supervisor.start(
            ratelimit_sync_child(ctx.db, store, settings.rate_limit_sync_seconds)
        )
    server = XRPCServer(
        create_app(ctx, limiter=limiter),
        settings.host,
        settings.port,
        grace=settings.shutdown_grace_seconds,
        fd=listen_fd,
    )
    bound: list[str] = await supervisor.start(
        ChildSpec(
            "xrpc",
            server.run,
            request_stop=server.request_stop,
            grace=settings.shutdown_grace_seconds + 1.0,
        )
    )
    return bound


@asynccontextmanager
async def until_signal(lifeline_fd: int | None = None) -> AsyncIterator[None]:
    """Run the block until SIGTERM or SIGINT, or (a worker process) until the
    supervisor is gone; the block is then cancelled and what encloses it drains.

    The signals are caught from the block's first moment, not once start-up is
    done: a SIGTERM while children still start (the first API worker may already
    answer health checks) stops Coves cleanly, exit 0, instead of killing it by
    the default action and leaving its children to notice alone.

    A worker's supervisor holds the write end of the lifeline pipe; it is
    closed when the supervisor exits, however it exits, and the worker then
    drains like on SIGTERM. Workers leave SIGINT (a terminal's Ctrl-C, sent
    to the whole process group) to the supervisor, which stops them in order.
    """
    wanted = [signal.SIGTERM] if lifeline_fd is not None else [signal.SIGINT, signal.SIGTERM]
    if lifeline_fd is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with trio.open_signal_receiver(*wanted) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    log.info("signal received", signal=signal.Signals(signum).name)
                    log.info("shutdown requested; draining")
                    nursery.cancel_scope.cancel()
                    return

            async def lifeline() -> None:
                assert lifeline_fd is not None
                async with trio.lowlevel.FdStream(lifeline_fd) as stream:
                    while await stream.receive_some(64):
                        pass
                log.info("supervisor gone; stopping")
                nursery.cancel_scope.cancel()

            nursery.start_soon(on_signal)
            if lifeline_fd is not None:
                nursery.start_soon(lifeline)
            yield


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


def install_pool_metrics(metrics: Metrics, db: Database, supervisor: Supervisor) -> None:
    """Scrape-time pool statistics and child states of this process."""
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
