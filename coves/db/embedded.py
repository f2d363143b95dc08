"""The embedded PostgreSQL: a real server from the ``pgserver`` wheel.

We use pgserver for its relocatable binaries but run ``postgres`` ourselves
as a child process rather than through pgserver's ``pg_ctl`` wrapper, which
daemonises the server where no supervisor could see it die. The server
listens only on a private unix socket under the data directory.

PostgreSQL refuses to run as root, so when Coves runs as root the server
runs as an unprivileged system user (the one pgserver itself uses).

The synchronous steps (``prepare``, ``argv``, ``wait_ready``) are separate
from the Trio child (:meth:`EmbeddedPostgres.run`) so the test suite can
start one server per session without an event loop.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psycopg
import trio

from coves.logs import get_logger

log = get_logger(__name__)

SYSTEM_USER = "pgserver"
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.5432"


class EmbeddedPostgresError(Exception):
    pass


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
        """Create the data directory and run initdb the first time."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        if self.run_as is not None:
            self._prepare_for_system_user()
        self._refuse_if_running()
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

    def running_pid(self) -> int | None:
        """The pid of a live postmaster on this cluster (another Coves holding it), if any."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _process_is_postgres(pid) else None

    def _refuse_if_running(self) -> None:
        pid = self.running_pid()
        if pid is not None:
            raise EmbeddedPostgresError(
                f"another PostgreSQL (pid {pid}) is already running on {self.pgdata}; "
                "is another Coves using this COVES_DATA_DIR?"
            )

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
    def start_blocking(self) -> subprocess.Popen[bytes]:
        self.prepare()
        with open(self.log_path, "ab") as log_file:
            proc = subprocess.Popen(self.argv(), **self.popen_kwargs(log_file))
        try:
            self.wait_ready(lambda: proc.poll() is None)
            self.ensure_database()
        except BaseException:
            stop_blocking(proc)
            raise
        return proc

    # -- the supervised Trio child -----------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Run PostgreSQL until cancelled; ``started`` with the conninfo once ready."""
        await trio.to_thread.run_sync(self.prepare)
        log_file = await trio.to_thread.run_sync(lambda: open(self.log_path, "ab"))  # noqa: SIM115
        try:
            proc = await trio.lowlevel.open_process(self.argv(), **self.popen_kwargs(log_file))
        finally:
            log_file.close()  # the child holds its own descriptor
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
            code = await proc.wait()
            raise EmbeddedPostgresError(f"postgres exited with code {code}:\n{self.log_tail()}")
        finally:
            with trio.CancelScope(shield=True):
                await _stop(proc)


async def _stop(proc: trio.Process, timeout: float = 30.0) -> None:
    if proc.returncode is not None:
        return
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients.
    proc.send_signal(signal.SIGINT)
    with trio.move_on_after(timeout):
        await proc.wait()
        log.info("embedded postgres stopped", code=proc.returncode)
        return
    proc.send_signal(signal.SIGQUIT)
    with trio.move_on_after(5):
        await proc.wait()
        return
    proc.kill()
    await proc.wait()


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


def _process_is_postgres(pid: int) -> bool:
    try:
        import psutil

        return "postgres" in psutil.Process(pid).name()
    except Exception:
        return False
