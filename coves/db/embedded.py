"""The embedded PostgreSQL: a real server from the ``pgserver`` wheel.

We use pgserver for its relocatable binaries but run ``postgres`` ourselves
as a child process rather than through pgserver's ``pg_ctl`` wrapper, which
daemonises the server where no supervisor could see it die. The server
listens only on a private unix socket under the data directory.

PostgreSQL refuses to run as root, so when Coves runs as root the server
runs as an unprivileged system user (the one pgserver itself uses).

Ownership. A Coves holds an exclusive ``flock`` on ``<data dir>/coves.lock``
for as long as it runs its server; the kernel drops it when the process dies,
however it dies. Holding the lock therefore proves that no live Coves owns the
directory, so a PostgreSQL still running there is an orphan (its owner was
killed with SIGKILL) and is shut down and replaced; not getting the lock means
a running Coves owns the directory, and start-up stops at once saying so. The
server is also started with a parent-death signal (``setpriv --pdeathsig``),
so when its owner dies it begins a fast shutdown by itself.

The synchronous steps (``prepare``, ``argv``, ``wait_ready``) are separate
from the Trio child (:meth:`EmbeddedPostgres.run`) so the test suite can
start one server per session without an event loop.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psycopg
import trio

from coves.logs import get_logger
from coves.startup import RefusedToStart

log = get_logger(__name__)

SYSTEM_USER = "pgserver"
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.5432"


class EmbeddedPostgresError(Exception):
    pass


class DataDirInUse(EmbeddedPostgresError, RefusedToStart):
    """Another running Coves owns this data directory (retrying cannot help)."""


LOCK_NAME = "coves.lock"
ORPHAN_STOP_SECONDS = 30.0


def bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():
        # pgserver warns on import when XDG_RUNTIME_DIR is unset (services, cron);
        # we only read where its binaries are.
        warnings.simplefilter("ignore")
        import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


class EmbeddedPostgres:
    """One PostgreSQL cluster under ``<data_dir>/postgres``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "coves",
        durable: bool = True,
        extra_settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self.database = database
        self.durable = durable
        self.extra_settings = dict(extra_settings or {})
        self.run_as: str | None = SYSTEM_USER if os.geteuid() == 0 else None
        self.socket_dir = self._choose_socket_dir()
        self.log_path = self.data_dir / "postgres.log"
        self._lock_fd: int | None = None

    # -- plain, synchronous steps ------------------------------------------------
    def _choose_socket_dir(self) -> Path:
        candidate = self.data_dir / "run"
        if len(str(candidate / ".s.PGSQL.5432")) <= _SOCKET_NAME_MAX:
            return candidate
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"coves-pg-{digest}"  # noqa: S108 - private 0700 dir

    def conninfo(self, database: str | None = None) -> str:
        return f"host={self.socket_dir} port=5432 user=postgres dbname={database or self.database}"

    def prepare(self) -> None:
        """Own the data directory, replace an orphaned server, run initdb the first time."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.lock()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        if self.run_as is not None:
            self._prepare_for_system_user()
        self._stop_orphan()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded postgres", pgdata=str(self.pgdata))
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            if self.run_as is not None:
                _chown(self.pgdata, self.run_as)
            result = subprocess.run(
                [
                    str(bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=False,
                capture_output=True,
                **self._user_kwargs(),
            )
            if result.returncode != 0:
                raise EmbeddedPostgresError(
                    "initdb failed: " + result.stderr.decode(errors="replace").strip()
                )

    def _prepare_for_system_user(self) -> None:
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        assert self.run_as is not None
        ensure_user_exists(self.run_as)
        ensure_prefix_permissions(self.socket_dir)  # makes data_dir and its parents traversable
        ensure_prefix_permissions(bin_dir())
        read_exec = 0o055
        ensure_folder_permissions(bin_dir(), read_exec)
        ensure_folder_permissions(bin_dir().parent / "lib", 0o044)
        ensure_folder_permissions(bin_dir().parent / "share", 0o044)
        _chown(self.socket_dir, self.run_as)
        if self.pgdata.exists():
            _chown(self.pgdata, self.run_as)

    def lock(self) -> None:
        """Take the data directory's ownership lock, or raise DataDirInUse naming the owner."""
        if self._lock_fd is not None:
            return
        path = self.data_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirInUse(
                f"COVES_DATA_DIR {self.data_dir} is in use by a running Coves (pid {holder}); "
                "stop it first, or give this one its own COVES_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def running_pid(self) -> int | None:
        """The pid of a live postmaster serving this cluster (a running Coves's), if any;
        operator commands connect to it instead of starting their own."""
        return self._running_postmaster()

    def _running_postmaster(self) -> int | None:
        """The pid of a PostgreSQL serving this data directory, if one runs."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _process_serves(pid, self.pgdata) else None

    def _stop_orphan(self) -> None:
        """Shut down a server left running by a Coves that died (we hold the lock, so its
        owner is gone): fast shutdown first, as a clean stop keeps the next start quick."""
        pid = self._running_postmaster()
        if pid is None:
            return
        log.warning("stopping the embedded postgres a dead Coves left running", pid=pid)
        for signum, wait in (
            (signal.SIGINT, ORPHAN_STOP_SECONDS),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _process_serves(pid, self.pgdata):
                    return
                time.sleep(0.05)
        raise EmbeddedPostgresError(f"could not stop the orphaned PostgreSQL (pid {pid})")

    def argv(self) -> list[str]:
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0777",
            "port": "5432",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "log_destination": "stderr",
            "logging_collector": "off",
        }
        if not self.durable:
            settings.update(
                {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
            )
        settings.update(self.extra_settings)
        argv = [str(bin_dir() / "postgres"), "-D", str(self.pgdata)]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            # When its owner dies (even by SIGKILL), the server starts a fast shutdown.
            argv = [setpriv, "--pdeathsig", "INT", "--", *argv]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _user_kwargs(self) -> dict[str, Any]:
        if self.run_as is None:
            return {}
        return {"user": self.run_as, "group": self.run_as, "extra_groups": []}

    def popen_kwargs(self, log_file: IO[bytes]) -> dict[str, Any]:
        return {
            "stdin": subprocess.DEVNULL,
            "stdout": log_file,
            "stderr": log_file,
            "start_new_session": True,  # our ^C must not reach postgres directly
            **self._user_kwargs(),
        }

    def try_connect(self) -> bool:
        try:
            with psycopg.connect(self.conninfo("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def wait_ready(self, alive: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive():
                raise EmbeddedPostgresError(
                    f"postgres exited during start-up; see {self.log_path}:\n{self.log_tail()}"
                )
            if self.try_connect():
                return
            time.sleep(0.05)
        raise EmbeddedPostgresError(f"postgres did not become ready in {timeout:.0f}s")

    def ensure_database(self, database: str | None = None) -> None:
        name = database or self.database
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
                )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- blocking lifecycle for tests and tools ------------------------------------
    def spawn(self) -> subprocess.Popen[bytes]:
        """Start ``postgres`` (after :meth:`prepare`) from the calling thread."""
        with open(self.log_path, "ab") as log_file:  # the child keeps its own descriptor
            return subprocess.Popen(self.argv(), **self.popen_kwargs(log_file))

    def start_blocking(self) -> subprocess.Popen[bytes]:
        """Start and wait until ready, from a thread that outlives the server.

        Not from ``trio.to_thread``: the parent-death signal fires when the
        spawning thread ends, and Trio's worker threads end when idle.
        """
        self.prepare()
        proc = self.spawn()
        try:
            self.wait_ready(lambda: proc.poll() is None)
            self.ensure_database()
        except BaseException:
            stop_blocking(proc)
            raise
        return proc

    # -- the supervised Trio child -----------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Run PostgreSQL until cancelled; ``started`` with the conninfo once ready.

        The server is spawned from this (Trio's) thread, not a worker thread as
        ``trio.lowlevel.open_process`` would: its parent-death signal fires when
        the spawning thread ends, and worker threads end when idle.
        """
        await trio.to_thread.run_sync(self.prepare)
        proc = self.spawn()
        try:
            while not await trio.to_thread.run_sync(self.try_connect):
                if proc.poll() is not None:
                    raise EmbeddedPostgresError(
                        f"postgres exited during start-up (code {proc.returncode}):\n"
                        f"{self.log_tail()}"
                    )
                await trio.sleep(0.05)
            await trio.to_thread.run_sync(self.ensure_database)
            log.info("embedded postgres ready", pid=proc.pid, socket=str(self.socket_dir))
            task_status.started(self.conninfo())
            code = await _exited(proc)
            raise EmbeddedPostgresError(f"postgres exited with code {code}:\n{self.log_tail()}")
        finally:
            with trio.CancelScope(shield=True):
                await _stop(proc)
            self.unlock()


async def _exited(proc: subprocess.Popen[bytes], timeout: float = math.inf) -> int | None:
    """Wait (polling: the process is not Trio's) for ``proc`` to exit; its code, or None."""
    with trio.move_on_after(timeout):
        while proc.poll() is None:
            await trio.sleep(0.1)
    return proc.returncode


async def _stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients.
    for signum, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 30.0)):
        proc.send_signal(signum)
        if await _exited(proc, wait) is not None:
            log.info("embedded postgres stopped", code=proc.returncode)
            return


def stop_blocking(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _chown(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _process_serves(pid: int, pgdata: Path) -> bool:
    """True when ``pid`` is a live postgres for ``pgdata`` (a reused pid is not)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or "postgres" not in proc.name():
            return False
        return str(pgdata) in proc.cmdline()
    except (psutil.Error, OSError):
        return False
