"""``coves dead-letters``: inspect and retry the events ingestion refused, without psql.

A retry feeds each letter's raw frame through the same indexer as live
ingestion (a fix released since, a community that got verified meanwhile,
...). Letters that apply, or are now skipped as stale, are removed; those
refused again are written as new letters with today's reason, then the old
ones are removed, so a crash in between can duplicate a letter but never
lose one. A retry never moves the live consumer's cursor.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import orjson

from coves.config import Settings
from coves.db import Database
from coves.db.queries import ops as q
from coves.ingest.reasons import describe
from coves.ingest.types import Frame

DEFAULT_LIMIT = 50
RETRY_LIMIT = 100_000


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    listing = sub.add_parser("list", help="newest first (default: counts by reason)")
    listing.add_argument("--reason", help="only this reason (e.g. invalid_record)")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    listing.add_argument("--before", type=int, help="only letters with a smaller id (paging)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = sub.add_parser("show", help="one or more letters in full, raw event included")
    show.add_argument("ids", type=int, nargs="+")
    retry = sub.add_parser("retry", help="feed letters through the indexer again")
    retry.add_argument("ids", type=int, nargs="*")
    retry.add_argument("--reason", help="every letter with this reason")
    retry.add_argument("--all", action="store_true", help="every letter")
    retry.add_argument("--limit", type=int, default=RETRY_LIMIT, help="at most this many")


def run(settings: Settings, args: argparse.Namespace) -> int:
    action = args.action or "counts"
    if action == "retry" and not (args.ids or args.reason or args.all):
        print("coves dead-letters retry: name ids, --reason REASON or --all", file=sys.stderr)
        return 2
    if getattr(args, "limit", 1) < 1:
        print("coves dead-letters: --limit must be positive", file=sys.stderr)
        return 2
    from coves.ops.problems import run_command

    return run_command("dead-letters", lambda: _main(settings, action, args))


async def _main(settings: Settings, action: str, args: argparse.Namespace) -> int:
    from coves.ops.database import operator_database

    async with operator_database(settings) as (db, _attached):
        if action == "counts":
            return await _counts(db)
        if action == "list":
            return await _list(db, args)
        if action == "show":
            return await _show(db, args.ids)
        return await _retry(db, settings, args)


async def _counts(db: Database) -> int:
    counts = await q.dead_letter_counts(db)
    if not counts:
        print("no dead letters")
        return 0
    print(f"{'reason':<22} {'count':>8}  {'newest':<25} meaning")
    for row in counts:
        newest = row.newest.isoformat(timespec="seconds")
        print(f"{row.reason:<22} {row.count:>8,}  {newest:<25} {describe(row.reason)}")
    print("list them: coves dead-letters list [--reason REASON]")
    return 0


async def _list(db: Database, args: argparse.Namespace) -> int:
    rows = await q.list_dead_letters(
        db, reason=args.reason, before_id=args.before, limit=args.limit
    )
    if args.json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
        return 0
    if not rows:
        print("no dead letters" + (f" with reason {args.reason}" if args.reason else ""))
        return 0
    for row in rows:
        received = row["received_at"].isoformat(timespec="seconds")
        where = "/".join(str(row[k]) for k in ("did", "collection", "rkey") if row[k]) or "-"
        detail = (row["detail"] or "").replace("\n", " ")[:120]
        print(f"{row['id']:>8}  {received}  {row['reason']:<20} {where}")
        if detail:
            print(f"{'':>8}  {detail}")
    if len(rows) == args.limit:
        print(f"(more: --before {rows[-1]['id']})")
    return 0


async def _show(db: Database, ids: list[int]) -> int:
    rows = await q.get_dead_letters(db, ids)
    found = {row["id"] for row in rows}
    for row in rows:
        print(f"id:          {row['id']}")
        print(f"received:    {row['received_at'].isoformat()}")
        print(f"reason:      {row['reason']} ({describe(row['reason'])})")
        print(f"detail:      {row['detail'] or '-'}")
        for key in ("did", "collection", "rkey", "time_us"):
            print(f"{key + ':':<12} {row[key] if row[key] is not None else '-'}")
        print("raw:")
        print(_pretty(row["raw"]))
        print()
    missing = [i for i in ids if i not in found]
    if missing:
        print(f"no dead letter with id {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    return 0


def _pretty(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw  # bad_json letters keep the text as it came


async def _retry(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    from coves.ingest.build import build_indexer
    from coves.metrics import Metrics

    if args.ids:
        ids = sorted(set(args.ids))
    else:
        ids = await q.dead_letter_ids(
            db, reason=None if args.all else args.reason, limit=args.limit
        )
    if not ids:
        print("nothing to retry")
        return 0
    indexer = build_indexer(
        db=db,
        instance_did=settings.instance_did,
        skip_did_web_verification=settings.skip_did_web_verification,
        metrics=Metrics(),
    )
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    missing = 0
    size = settings.jetstream_batch_size
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        rows = await q.get_dead_letters(db, chunk)
        missing += len(chunk) - len(rows)
        if not rows:
            continue
        batch = indexer.prepare([Frame(data=row["raw"].encode(), received_at=0.0) for row in rows])
        batch.cursor = None  # never the live consumer's cursor
        result = await indexer.commit(batch)
        await q.delete_dead_letters(db, [row["id"] for row in rows])
        totals.update(
            retried=result.events,
            applied=result.applied,
            skipped=result.skipped,
            again=result.dead_lettered,
        )
        reasons.update(result.reasons)
    await q.flush_commits(db)
    print(f"retried:           {totals['retried']:,}")
    print(f"applied:           {totals['applied']:,}")
    print(f"skipped:           {totals['skipped']:,}")
    print(f"dead-lettered again: {totals['again']:,}")
    for reason, count in sorted(reasons.items()):
        print(f"  {reason}: {count:,} ({describe(reason)})")
    if missing:
        print(f"not found:         {missing:,}", file=sys.stderr)
        return 1
    return 0


def _register() -> None:
    from coves.cli import EXTRA_COMMANDS

    EXTRA_COMMANDS["dead-letters"] = (
        "list, show and retry the events ingestion refused",
        configure,
        run,
    )


_register()
