"""Finding a ``pg_dump``/``pg_restore`` that matches the server, and calling it safely.

``pg_dump`` refuses a server newer than itself and ``pg_restore`` an archive
written by a newer ``pg_dump``, so the tool is chosen by major version: the
directory named by ``PG_BIN_DIR`` when set (and only it), otherwise the
binaries shipped in the ``pgserver`` wheel (the embedded server's own), then
Debian's ``/usr/lib/postgresql/<major>/bin``, then ``PATH``, taking the first
new enough.

Credentials never go on a command line (visible in ``ps``): the password is
moved from the connection string into ``PGPASSWORD`` in the child's
environment only.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class PgToolError(Exception):
    """No suitable tool, or the tool failed; the message says what to do."""


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int
    version: str


def tool_version(path: Path) -> Tool | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return Tool(path, int(match.group(1)), version)


def _candidate_dirs(configured: Path | None) -> Iterator[Path]:
    if configured is not None:
        yield configured
        return
    from coves.db.embedded import bin_dir

    yield bin_dir()
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)
        )
        for each in majors:
            yield each / "bin"
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            yield Path(entry)


def find_tool(name: str, min_major: int, configured: Path | None = None) -> Tool:
    """The first ``name`` binary whose major version is at least ``min_major``."""
    seen: list[str] = []
    for directory in _candidate_dirs(configured):
        path = directory / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        tool = tool_version(path)
        if tool is None:
            continue
        if tool.major >= min_major:
            return tool
        seen.append(f"{path} ({tool.version})")
    where = f"PG_BIN_DIR={configured}" if configured else "the bundled tools, Debian's or PATH"
    found = f"; found only {', '.join(seen)}" if seen else ""
    raise PgToolError(
        f"no {name} of PostgreSQL {min_major} or newer in {where}{found}; install the "
        f"PostgreSQL {min_major} client tools and set PG_BIN_DIR to their bin directory"
    )


def split_conninfo(conninfo: str) -> tuple[str, dict[str, str]]:
    """The conninfo without its password, and the environment that carries it."""
    params = conninfo_to_dict(conninfo)
    env: dict[str, str] = {}
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def run_tool(tool: Tool, args: list[str], conninfo: str, *, timeout: float | None = None) -> str:
    """Run ``tool`` against ``conninfo``; its stderr in the error when it fails."""
    safe, extra_env = split_conninfo(conninfo)
    env = {**os.environ, **extra_env}
    argv = [str(tool.path), *args, f"--dbname={safe}"]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise PgToolError(f"{tool.path.name} did not finish within {timeout:.0f}s") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise PgToolError(f"{tool.path.name} failed (exit {result.returncode}): {detail}")
    return result.stdout
