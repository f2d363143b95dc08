"""``coves status``: the facts ``_health`` gives, readable, plus what only the database knows.

Two sources. The running server's ``/xrpc/_health`` (its children with
their details: the consumer's connection and lag, the PDS probe, the token
refresher, ...), and the database itself (schema version, stream cursors,
dead letters by reason, backups), read directly so they are there even when
the server is down. Exit status: 0 when the server answers healthy, 1
otherwise, so it can gate a deploy script.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import trio

from coves import clock
from coves.config import Settings

HEALTH_TIMEOUT_SECONDS = 5.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="base URL of the running server (default: http://COVES_HOST:COVES_PORT)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def local_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", ""):  # noqa: S104 - reading the bind address, not binding
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@dataclass
class Report:
    server_url: str
    health: dict[str, Any] | None = None
    health_status: int | None = None
    server_error: str | None = None
    database: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.health_status == 200 and bool(self.database.get("reachable"))

    def as_json(self) -> dict[str, Any]:
        return {
            "server": {
                "url": self.server_url,
                "httpStatus": self.health_status,
                "error": self.server_error,
                "health": self.health,
            },
            "database": self.database,
            "healthy": self.healthy,
        }


def fetch_health(url: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> tuple[int, dict[str, Any]]:
    import httpx

    response = httpx.get(url.rstrip("/") + "/xrpc/_health", timeout=timeout)
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError("_health did not answer a JSON object")
    return response.status_code, body


async def gather(settings: Settings, url: str) -> Report:
    report = Report(server_url=url)
    try:
        status, body = await trio.to_thread.run_sync(fetch_health, url)
        report.health_status, report.health = status, body
    except Exception as exc:  # refused, timed out, not JSON: the server is not answering
        report.server_error = f"{type(exc).__name__}: {exc}"
    report.database = await database_facts(settings)
    return report


async def database_facts(settings: Settings) -> dict[str, Any]:
    from coves.db import DatabaseError
    from coves.db.embedded import EmbeddedPostgresError
    from coves.db.migrate import load_migrations
    from coves.db.queries import ops as q
    from coves.ops.database import operator_database

    facts: dict[str, Any] = {"reachable": False}
    try:
        async with operator_database(settings, pool_size=1) as (db, attached):
            facts["reachable"] = True
            facts["via"] = attached.kind
            version = await q.schema_version(db)
            latest = max(m.version for m in load_migrations())
            facts["schemaVersion"] = version
            facts["pendingMigrations"] = sum(
                1 for m in load_migrations() if version is None or m.version > version
            )
            facts["latestMigration"] = latest
            if version is None:
                return facts
            facts["cursors"] = [_cursor(row) for row in await q.cursors(db)]
            counts = await q.dead_letter_counts(db)
            facts["deadLetters"] = {
                "total": sum(c.count for c in counts),
                "byReason": {c.reason: c.count for c in counts},
            }
            backups = await q.backup_facts(db)
            facts["backups"] = {
                "lastSuccess": _iso(backups.last_ok_at),
                "lastSuccessAgeSeconds": _age(backups.last_ok_at),
                "lastSuccessFile": backups.last_ok_file,
                "lastSuccessBytes": backups.last_ok_size,
                "lastFailure": _iso(backups.last_failure_at),
                "lastFailureError": backups.last_failure_error,
            }
    except* (DatabaseError, EmbeddedPostgresError, OSError) as group:
        # Unreachable, or the embedded server could not be started from here.
        facts["error"] = str(group.exceptions[0])
    return facts


def _cursor(row: dict[str, Any]) -> dict[str, Any]:
    """A stream position: Jetstream's is a time (so it tells the lag); a firehose's
    (``firehose:<host>``) is the source's sequence number, so only when it last moved."""
    moved = _age(row["updated_at"])
    if str(row["name"]).startswith("firehose:"):
        return {"name": row["name"], "seq": row["time_us"], "updatedSecondsAgo": moved}
    now_us = int(clock.wall_now() * 1_000_000)
    return {
        "name": row["name"],
        "timeUs": row["time_us"],
        "time": _iso_us(row["time_us"]),
        "lagSeconds": round(max(0, now_us - row["time_us"]) / 1e6, 1),
        "updatedSecondsAgo": moved,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _iso_us(time_us: int) -> str:
    return _iso(datetime.fromtimestamp(time_us / 1e6, UTC)) or ""


def _age(value: datetime | None) -> float | None:
    if value is None:
        return None
    return round(clock.wall_now() - value.timestamp(), 1)


def _duration(seconds: float | None) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def render(report: Report) -> str:
    from coves import __version__

    lines = [f"coves {__version__} status"]
    if report.health is not None:
        state = report.health.get("status", "?")
        version = report.health.get("version", "?")
        lines.append(
            f"server:      {report.server_url}  {state} (HTTP {report.health_status}, "
            f"version {version})"
        )
        db_view = report.health.get("database", {})
        lines.append(f"  database reachable from the server: {db_view.get('reachable')}")
        processes = report.health.get("processes")
        if processes:  # several processes: each one's children from its heartbeat
            for process in processes:
                state = "healthy" if process.get("healthy") else "UNHEALTHY"
                lines.append(
                    f"  process {process.get('name')} ({process.get('role')}, pid "
                    f"{process.get('pid')}, {process.get('host')}): {state}, seen "
                    f"{_duration(process.get('lastSeenSecondsAgo'))} ago"
                )
                for name, child in (process.get("children") or {}).items():
                    lines.extend(_child_lines(name, child))
        else:
            children = report.health.get("children", {})
            if children:
                lines.append("  children:")
                for name, child in children.items():
                    lines.extend(_child_lines(name, child))
    else:
        lines.append(f"server:      {report.server_url}  NOT ANSWERING ({report.server_error})")
    lines.extend(_database_lines(report.database))
    lines.append("healthy" if report.healthy else "UNHEALTHY")
    return "\n".join(lines)


def _child_lines(name: str, child: dict[str, Any]) -> list[str]:
    line = f"    {name:<14} {child.get('status', '?'):<9} restarts {child.get('restarts', 0)}"
    if child.get("lastError"):
        line += f"  last error: {str(child['lastError'])[:120]}"
    out = [line]
    details = child.get("details") or {}
    if details:
        parts = [f"{key}={_short(value)}" for key, value in details.items() if value is not None]
        current = "        "
        for part in parts:
            if len(current) + len(part) > 100 and current.strip():
                out.append(current.rstrip())
                current = "        "
            current += part + "  "
        if current.strip():
            out.append(current.rstrip())
    return out


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _database_lines(facts: dict[str, Any]) -> list[str]:
    if not facts.get("reachable"):
        return [f"database:    UNREACHABLE ({facts.get('error', 'unknown error')})"]
    version = facts.get("schemaVersion")
    pending = facts.get("pendingMigrations", 0)
    migration = f"schema {version}" + (
        f", {pending} migration(s) pending (coves migrate)" if pending else " (up to date)"
    )
    lines = [f"database:    reachable via {facts.get('via')}; {migration}"]
    for cursor in facts.get("cursors", []):
        moved = f"moved {_duration(cursor['updatedSecondsAgo'])} ago"
        if "seq" in cursor:
            lines.append(f"  cursor {cursor['name']}: seq {cursor['seq']} ({moved})")
        else:
            lines.append(
                f"  cursor {cursor['name']}: {cursor['time']} "
                f"({_duration(cursor['lagSeconds'])} behind now, {moved})"
            )
    if "cursors" in facts and not facts["cursors"]:
        lines.append("  cursor: none yet (nothing ingested)")
    letters = facts.get("deadLetters")
    if letters is not None:
        if letters["total"]:
            reasons = ", ".join(f"{r} {n:,}" for r, n in letters["byReason"].items())
            lines.append(
                f"dead letters: {letters['total']:,} ({reasons}); see coves dead-letters list"
            )
        else:
            lines.append("dead letters: none")
    backups = facts.get("backups")
    if backups is not None:
        if backups["lastSuccess"]:
            size = backups["lastSuccessBytes"] or 0
            lines.append(
                f"backups:     last good {backups['lastSuccess']} "
                f"({_duration(backups['lastSuccessAgeSeconds'])} ago, {size / 1e6:.1f} MB, "
                f"{backups['lastSuccessFile']})"
            )
        else:
            lines.append("backups:     none recorded (coves backup)")
        if backups["lastFailure"]:
            lines.append(
                f"             last FAILED {backups['lastFailure']}: {backups['lastFailureError']}"
            )
    return lines


def run(settings: Settings, args: argparse.Namespace) -> int:
    url = args.url or local_url(settings)
    report = trio.run(gather, settings, url)
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        print(render(report))
    return 0 if report.healthy else 1


def _register() -> None:
    from coves.cli import EXTRA_COMMANDS

    EXTRA_COMMANDS["status"] = (
        "the running instance's health, stream cursors, dead letters and backups",
        configure,
        run,
    )


_register()
