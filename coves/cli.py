"""The ``coves`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
import trio

from coves import __version__
from coves.config import ConfigError, Settings, load_settings
from coves.excgroups import first_leaf
from coves.logs import configure_logging, get_logger

log = get_logger("coves")

Command = Callable[[Settings, argparse.Namespace], int]
# Subcommands contributed by capabilities: name -> (help, configure parser, run)
EXTRA_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coves", description="Coves AppView")
    parser.add_argument(
        "--env-file", type=Path, default=None, help="a .env file (default: ./.env if present)"
    )
    parser.add_argument("--version", action="version", version=f"coves {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the supervised server")
    serve.add_argument("--host", help="listen address (overrides COVES_HOST)")
    serve.add_argument("--port", type=int, help="listen port (overrides COVES_PORT)")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    serve.add_argument(
        "--workers",
        type=int,
        help="API worker processes on the one port, beside one ingesting process; 0 runs "
        "everything in this process (overrides COVES_WORKERS; default: one per core)",
    )
    serve.add_argument(
        "--role",
        choices=("all", "api", "ingest"),
        help="run everything, only the API workers, or only ingestion (overrides COVES_ROLE)",
    )
    # Set by the supervisor for the worker processes it starts (nurseries/workers.py).
    for hidden in ("--listen-fd", "--ready-fd", "--lifeline-fd"):
        serve.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    serve.add_argument("--process-name", help=argparse.SUPPRESS)

    sub.add_parser("migrate", help="apply pending database migrations and exit")
    sub.add_parser("check-config", help="print the effective configuration (secrets redacted)")

    for name, (help_text, configure, _run) in EXTRA_COMMANDS.items():
        configure(sub.add_parser(name, help=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _load_extra_commands()
    args = _parser().parse_args(argv)
    if args.env_file is not None and not args.env_file.is_file():
        print(f"coves: --env-file {args.env_file}: no such file", file=sys.stderr)
        return 2
    try:
        settings = load_settings(dotenv=args.env_file or Path(".env"))
    except ConfigError as exc:
        print(f"coves: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        return _check_config(settings)
    configure_logging(settings.log_level, settings.effective_log_format)
    for warning in settings.warnings:
        log.warning(warning)
    if args.command == "serve":
        changes: dict[str, object] = {}
        if args.host:
            changes["host"] = args.host
        if args.port is not None:
            changes["port"] = args.port
        if args.role:
            changes["role"] = args.role
        if args.workers is not None:
            changes["workers"] = args.workers
        settings = settings.replace(**changes) if changes else settings
        if settings.role != "all" and settings.database_url is None:
            print(
                f"coves: --role {settings.role} runs part of a deployment whose processes share "
                "one PostgreSQL: set DATABASE_URL",
                file=sys.stderr,
            )
            return 2
        return _serve(
            settings,
            args,
            migrate_on_start=settings.db_migrate_on_start and not args.no_migrate,
        )
    try:
        if args.command == "migrate":
            return trio.run(_migrate, settings)
        _help, _configure, run = EXTRA_COMMANDS[args.command]
        return run(settings, args)
    except BaseException as exc:
        if _refused(exc):
            return 2
        from coves.ops.problems import CommandFailed

        if isinstance(exc, CommandFailed):
            return 1  # already reported in one line
        raise


def _check_config(settings: Settings) -> int:
    width = max(len(name) for name in settings.redacted())
    for name, value in settings.redacted().items():
        print(f"{name.ljust(width)}  {value}")
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _serve(settings: Settings, args: argparse.Namespace, *, migrate_on_start: bool) -> int:
    from coves.interpreter import apply_gc_thresholds, apply_switch_interval
    from nurseries.supervisor import ChildFailedTooOften

    apply_switch_interval(settings.switch_interval_seconds)
    apply_gc_thresholds(settings.gc_thresholds)
    role = settings.role
    workers = settings.workers
    if workers is None:
        from nurseries.workers import default_workers

        workers = default_workers()
    spawned = args.ready_fd is not None  # a worker process started by the supervisor
    metrics_dir: str | None = None
    if workers > 0 and role != "ingest" and not spawned:
        # Before any metric exists: values then live in files that every
        # process's /metrics adds up (the workers inherit the directory).
        from coves.metrics import enable_multiprocess, make_multiprocess_dir

        metrics_dir = make_multiprocess_dir(settings.data_dir)
        enable_multiprocess(metrics_dir)
    try:
        trio.run(
            lambda: _run(
                settings,
                args,
                role=role,
                workers=workers,
                spawned=spawned,
                migrate_on_start=migrate_on_start,
            )
        )
    except BaseException as exc:
        if _refused(exc):
            return 2
        failed = first_leaf(exc, ChildFailedTooOften)
        if failed is not None:
            log.critical("coves stopped: a child failed too often", error=str(failed))
            return 1
        if first_leaf(exc, KeyboardInterrupt) is not None:
            return 0
        log.critical("coves stopped by an unexpected error", exc_info=exc)
        return 1
    finally:
        if metrics_dir is not None:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


async def _run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    role: str,
    workers: int,
    spawned: bool,
    migrate_on_start: bool,
) -> None:
    from coves.interpreter import GcMetrics, freeze_startup_heap
    from coves.metrics import Metrics

    metrics = Metrics()
    GcMetrics().install(metrics)
    if workers > 0 and role != "ingest" and not spawned:
        from nurseries.workers import run_deployment

        await run_deployment(
            settings,
            workers=workers,
            role=role,
            migrate_on_start=migrate_on_start,
            env_file=args.env_file
            if args.env_file is not None and args.env_file.is_file()
            else None,
            metrics=metrics,
        )
        return

    from nurseries.main import run_server

    if args.process_name:
        structlog.contextvars.bind_contextvars(process=args.process_name)

    def ready() -> None:
        if settings.gc_freeze:
            frozen = freeze_startup_heap()
            log.info("start-up heap frozen", objects=frozen)
        if args.ready_fd is not None:
            os.write(args.ready_fd, b"ready\n")
            os.close(args.ready_fd)

    await run_server(
        settings,
        migrate_on_start=migrate_on_start,
        role=role,
        listen_fd=args.listen_fd,
        process_name=args.process_name,
        metrics=metrics,
        on_ready=ready,
        lifeline_fd=args.lifeline_fd,
    )


def _refused(exc: BaseException) -> bool:
    """Log a start-up refusal as the one line it is (no traceback)."""
    from coves.startup import find_refusal

    refused = find_refusal(exc)
    if refused is None:
        return False
    log.critical("coves refuses to start", reason=str(refused))
    return True


async def _migrate(settings: Settings) -> int:
    from coves.db.migrate import migrate
    from coves.db.tooling import tool_database

    async with tool_database(settings) as db:
        done = await migrate(db)
    print(f"applied {len(done)} migration(s)")
    return 0


def _load_extra_commands() -> None:
    """Import modules that contribute subcommands (kept lazy for start-up time)."""
    import importlib

    for module in _COMMAND_MODULES:
        importlib.import_module(module)


_COMMAND_MODULES: tuple[str, ...] = (
    "coves.identity.cli",
    "coves.ingest.replay",
    "coves.ops.status",
    "coves.ops.dead_letters",
    "coves.ops.backup_cli",
    "coves.ops.cache_cli",
    "coves.oauth.cli",
    "coves.rotate_cli",
    "coves.ops.reports_cli",
    "coves.hosting.cli",
)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
