"""``coves reports``: the instance admins' view of user reports.

Lists reports as JSON lines, newest first (``--status open`` by default), and
moves one through its states (``--set ID STATUS``: reviewing, resolved,
dismissed, open).
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
    from coves.db import Database
    from coves.db.embedded import EmbeddedPostgres
    from coves.db.queries import reports as q

    async with trio.open_nursery() as nursery:
        if settings.database_url is None:
            conninfo: str = await nursery.start(EmbeddedPostgres(settings.data_dir).run)
        else:
            conninfo = settings.database_url.reveal()
        code = 0
        async with Database(conninfo, pool_size=1) as db:
            if args.set:
                report_id, status = args.set
                if status not in STATUSES or not report_id.isdigit():
                    print(f"coves reports: --set ID STATUS, STATUS in {STATUSES}", file=sys.stderr)
                    code = 2
                elif not await q.set_status(db, int(report_id), status):
                    print(f"coves reports: no report {report_id}", file=sys.stderr)
                    code = 1
                else:
                    print(f"report {report_id}: {status}")
            else:
                status = None if args.status == "all" else args.status
                for row in await q.list_reports(db, status=status, limit=max(1, args.limit)):
                    sys.stdout.write(orjson.dumps(row, default=_json).decode() + "\n")
        nursery.cancel_scope.cancel()
    return code


def _run(settings: Settings, args: argparse.Namespace) -> int:
    return trio.run(_main, settings, args)


EXTRA_COMMANDS["reports"] = ("list and settle user reports", _configure, _run)
