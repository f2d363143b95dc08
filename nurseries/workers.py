"""``coves serve --workers N``: N API processes on one port, one ingesting process.

Python runs one core per process, so a machine's cores are used by running
the API in several processes. This supervisor process owns what is shared:
the embedded PostgreSQL (when there is no DATABASE_URL), the migrations and
the listening socket, which every API worker inherits (``fd://``) and accepts
from; whichever worker is free takes the next connection. One more process
runs the ingest role (the Jetstream consumer, identity upkeep). Each child
is ``coves serve --workers 0 --role api|ingest`` (nurseries/main.py).

Each child is a supervised child of this process's supervisor: a worker
that dies is restarted with the usual backoff (and a worker dying too often
stops everything, as any child would); SIGTERM or SIGINT stops the API
workers together (each drains its in-flight requests), then the ingester,
then PostgreSQL. A child learns it is ready to be counted on through a
readiness pipe, and that this process has gone (even by SIGKILL) through a
lifeline pipe that closes, so no worker outlives its supervisor.

What the processes share, and how, is in docs/scaling.md: cache
invalidation over PostgreSQL LISTEN/NOTIFY, rate limits through shared
windows, _health through heartbeats, /metrics through prometheus_client's
multi-process files.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import trio

from coves.config import Settings
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres
from coves.logs import get_logger
from coves.metrics import MULTIPROCESS_ENV, Metrics, multiprocess_dir
from coves.startup import RefusedToStart
from nurseries.main import (
    Runtime,
    check_database,
    database_spec,
    until_signal,
)
from nurseries.supervisor import ChildSpec, RestartPolicy, open_supervisor
from nurseries.upkeep import heartbeat_child

log = get_logger(__name__)

WORKER_POLICY = RestartPolicy(base_delay=0.5, max_delay=30.0, max_failures=5, failure_window=300.0)
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 10.0


class WorkerFailed(Exception):
    """A worker process exited (or never became ready)."""


def default_workers() -> int:
    """One API worker per core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass
class WorkerProcess:
    """One child process; ``run`` is its supervised-child start function."""

    name: str
    role: str
    env: dict[str, str]
    env_file: Path | None = None
    listen_fd: int | None = None
    start_timeout: float = START_TIMEOUT_SECONDS
    pid: int | None = None
    exits: list[int] = field(default_factory=list)
    _proc: trio.Process | None = None
    _stopping: bool = False

    def argv(self, ready_fd: int, lifeline_fd: int) -> list[str]:
        argv = worker_command()
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        argv += ["serve", "--workers", "0", "--role", self.role, "--no-migrate"]
        argv += ["--process-name", self.name, "--ready-fd", str(ready_fd)]
        argv += ["--lifeline-fd", str(lifeline_fd)]
        if self.listen_fd is not None:
            argv += ["--listen-fd", str(self.listen_fd)]
        return argv

    def stop_requested(self) -> bool:
        return self._stopping

    def request_stop(self) -> None:
        """Ask the process to drain and exit (SIGTERM)."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        self._stopping = False
        ready_r, ready_w = os.pipe()
        life_r, life_w = os.pipe()
        passed = [ready_w, life_r] + ([self.listen_fd] if self.listen_fd is not None else [])
        try:
            proc = await trio.lowlevel.open_process(
                self.argv(ready_w, life_r), env=self.env, pass_fds=passed
            )
        except BaseException:
            for fd in (ready_r, life_w):
                os.close(fd)
            raise
        finally:
            os.close(ready_w)
            os.close(life_r)
        self._proc = proc
        self.pid = proc.pid
        try:
            said = b""
            async with trio.lowlevel.FdStream(ready_r) as ready:
                with trio.move_on_after(self.start_timeout):
                    said = await _read_line(ready)
            if said != b"ready":
                proc.kill()
                code = await proc.wait()
                raise WorkerFailed(f"{self.name} exited before it was ready (code {code})")
            log.info("worker ready", worker=self.name, pid=proc.pid)
            task_status.started(proc.pid)
            code = await proc.wait()
            self.exits.append(code)
            if self._stopping:
                return
            if code == 0:
                # A clean exit means someone sent it a signal; when that was the
                # whole deployment being stopped, this supervisor is about to
                # cancel us too: do not race it with a restart.
                log.info("worker exited cleanly", worker=self.name, pid=proc.pid)
                await trio.sleep(1.0)
                if self.stop_requested():
                    return
            raise WorkerFailed(f"{self.name} (pid {proc.pid}) exited with code {code}")
        finally:
            os.close(life_w)  # the lifeline: a child still running stops when it closes
            with trio.CancelScope(shield=True):
                if proc.returncode is None and not self._stopping:
                    # Stopped while starting (a signal during start-up): it may
                    # already accept connections, so it drains rather than dies.
                    with trio.move_on_after(STOP_TIMEOUT_SECONDS):
                        await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            _forget_metrics(proc.pid)


def worker_command() -> list[str]:
    """How a child process runs Coves: this interpreter, and never a ``coves`` folder
    that happens to sit in the working directory. ``-m`` puts the working directory
    first on ``sys.path``; ``-P`` (Python 3.11+) leaves it out, so the installed
    package is the one that runs, whatever directory the operator started in."""
    return [sys.executable, "-P", "-m", "coves"]


async def _read_line(stream: trio.lowlevel.FdStream) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < 64:
        chunk = await stream.receive_some(64)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].strip()


def _forget_metrics(pid: int) -> None:
    """Drop a dead process's live gauges from the shared metrics directory."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The one socket every API worker accepts from (inherited by each)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.set_inheritable(True)
    return sock


def child_env(conninfo: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["COVES_WORKERS"] = "0"
    env["DB_MIGRATE_ON_START"] = "false"
    if conninfo is not None:
        env["DATABASE_URL"] = conninfo  # the embedded PostgreSQL this process runs
    directory = multiprocess_dir()
    if directory is not None:
        env[MULTIPROCESS_ENV] = directory
    return env


async def run_deployment(
    settings: Settings,
    *,
    workers: int,
    role: str = "all",
    migrate_on_start: bool = True,
    env_file: Path | None = None,
    metrics: Metrics | None = None,
    task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Supervise ``workers`` API processes (and, for role ``all``, one ingester)."""
    if role not in ("all", "api"):
        raise ValueError("only the all and api roles run worker processes")
    if workers < 1:
        raise ValueError("at least one worker")
    metrics = metrics if metrics is not None else Metrics()

    def count_restart(name: str) -> None:
        metrics.child_restarts.labels(name).inc()

    # The signals stop start-up too; the supervisor then drains what had started.
    async with open_supervisor(on_restart=count_restart) as supervisor, until_signal():
        runtime = Runtime(settings, supervisor, metrics)
        embedded_conninfo: str | None = None
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            embedded_conninfo = await supervisor.start(
                ChildSpec("postgres", embedded.run, RestartPolicy(max_failures=3), grace=30.0)
            )
            conninfo = embedded_conninfo
        else:
            conninfo = settings.database_url.reveal()
        db = Database(conninfo, pool_size=2, statement_timeout_ms=settings.db_statement_timeout_ms)
        runtime.db = await supervisor.start(database_spec("database", db))
        # Refuses (exit 2, one line) before any worker starts, as one process would.
        await check_database(db, settings, migrate_on_start=migrate_on_start)
        env = child_env(embedded_conninfo)
        grace = settings.shutdown_grace_seconds + 5.0
        # Before any process starts: a port in use refuses at once.
        try:
            sock = listening_socket(settings.host, settings.port)
        except OSError as exc:
            raise RefusedToStart(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from None
        try:
            if role == "all":
                ingester = WorkerProcess("ingest", "ingest", env, env_file)
                await supervisor.start(
                    ChildSpec(
                        "ingest",
                        ingester.run,
                        WORKER_POLICY,
                        request_stop=ingester.request_stop,
                        grace=grace,
                        critical=False,  # reads go on without ingestion; its lag shows in _health
                    )
                )
            host, port = sock.getsockname()[:2]
            api = [
                WorkerProcess(f"api-{i}", "api", env, env_file, listen_fd=sock.fileno())
                for i in range(workers)
            ]

            async def start_worker(worker: WorkerProcess) -> None:
                await supervisor.start(
                    ChildSpec(
                        worker.name,
                        worker.run,
                        WORKER_POLICY,
                        request_stop=worker.request_stop,
                        grace=grace,
                        group="api",
                    )
                )

            async with trio.open_nursery() as starting:  # side by side: start-up is CPU-bound
                for worker in api:
                    starting.start_soon(start_worker, worker)
            await supervisor.start(
                heartbeat_child(
                    db,
                    supervisor,
                    name="supervisor",
                    role="supervisor",
                    metrics=metrics,
                    extra=lambda: {"workers": {w.name: w.pid for w in api}},
                )
            )
            shown = f"[{host}]" if ":" in host else host
            runtime.bound = [f"http://{shown}:{port}"]
            log.info("coves serving", workers=workers, role=role, bind=runtime.bound[0])
            task_status.started(runtime)
            await trio.sleep_forever()  # until a signal cancels the block
        finally:
            # The workers hold their own copies; ours goes once they are stopped.
            with trio.CancelScope(shield=True):
                await supervisor.shutdown()
            sock.close()
