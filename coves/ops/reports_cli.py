"""``coves reports``: the instance admins' view of user reports.

Lists reports as JSON lines, newest first (``--status open`` by default), and
moves one through its states (``--set ID STATUS``: reviewing, resolved,
dismissed, open). Reports are stored by ``social.coves.admin.submitReport``
(``coves.writes.reports``). Like the other operator commands it works on the
running instance's database when ``coves serve`` holds the embedded one.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

import orjson
import trio

from coves.cli import EXTRA_COMMANDS
from coves.config import Settings

STATUSES = ("open", "reviewing", "resolved", "dismissed")


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status", choices=(*STATUSES, "all"), default="open", help="which reports to list"
    )
    parser.add_argument("--limit", type=int, default=100, help="most reports to list")
    parser.add_argument(
        "--set", nargs=2, metavar=("ID", "STATUS"), help="change one report's status"
    )


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError


async def _main(settings: Settings, args: argparse.Namespace) -> int:
    from coves.db.queries import reports as q
    from coves.ops.database import operator_database

    if args.set:
        report_id, status = args.set
        if status not in STATUSES or not report_id.isdigit():
            print(f"coves reports: --set ID STATUS, STATUS in {STATUSES}", file=sys.stderr)
            return 2
    async with operator_database(settings, pool_size=1) as (db, _attached):
        if args.set:
            if not await q.set_status(db, int(report_id), status):
                print(f"coves reports: no report {report_id}", file=sys.stderr)
                return 1
            print(f"report {report_id}: {status}")
            return 0
        status = None if args.status == "all" else args.status
        for row in await q.list_reports(db, status=status, limit=max(1, args.limit)):
            sys.stdout.write(orjson.dumps(row, default=_json).decode() + "\n")
    return 0


def _run(settings: Settings, args: argparse.Namespace) -> int:
    return trio.run(_main, settings, args)


EXTRA_COMMANDS["reports"] = ("list and settle user reports", _configure, _run)
