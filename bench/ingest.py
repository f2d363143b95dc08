"""Ingestion throughput: the Indexer against a plain batched INSERT baseline.

Generates (or reads) a Jetstream capture, replays it through the production
indexer (lexicon validation, rev gating, effective votes, recounts, cursor)
into an empty, durable embedded PostgreSQL with the same batch size as the
live consumer, then — in the same run, on the same server — times plain
multi-row INSERTs of the equivalent rows into the same tables in a second
empty database (no validation, no gating, no recounts). Prints events/s,
rows/s and their ratio.

    .venv/bin/python bench/ingest.py [--events 200000] [--batch-size 500] [--file X.jsonl]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_stream import INSTANCE_DID, write
from coves.atproto.syntax import parse_datetime
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres
from coves.db.migrate import migrate
from coves.ingest.build import build_indexer
from coves.ingest.replay import Progress, replay
from coves.metrics import Metrics


def baseline_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the indexer's creates would write, built outside the timed section.

    The stream's edits and deletes are left out: the baseline is the cost of
    storing the same new rows with plain INSERTs, so its row count is a little
    below the indexer's event count and the ratio slightly flatters the baseline.
    """
    from coves.ingest.replay import open_stream

    tables: dict[str, list[tuple[Any, ...]]] = {
        "communities": [],
        "posts": [],
        "comments": [],
        "votes": [],
        "subscriptions": [],
    }
    with open_stream(path) as stream:
        for line in stream:
            event = orjson.loads(line)
            commit = event["commit"]
            if commit["operation"] != "create":
                continue  # edits and deletes (3%): a plain INSERT has no counterpart
            repo, rkey, rec = event["did"], commit["rkey"], commit["record"]
            uri = f"at://{repo}/{commit['collection']}/{rkey}"
            created = parse_datetime(rec["createdAt"])
            kind = commit["collection"].rsplit(".", 1)[-1]
            body = orjson.dumps(rec).decode()
            if kind == "profile":
                tables["communities"].append(
                    (
                        repo,
                        rec["name"],
                        rec["createdBy"],
                        rec["hostedBy"],
                        body,
                        commit["cid"],
                        created,
                    )
                )
            elif kind == "post":
                tables["posts"].append(
                    (
                        uri,
                        rkey,
                        commit["cid"],
                        repo,
                        rec["author"],
                        rec["title"],
                        rec["content"],
                        body,
                        created,
                    )
                )
            elif kind == "comment":
                reply = rec["reply"]
                tables["comments"].append(
                    (
                        uri,
                        rkey,
                        commit["cid"],
                        repo,
                        reply["root"]["uri"],
                        reply["root"]["cid"],
                        reply["parent"]["uri"],
                        reply["parent"]["cid"],
                        rec["content"],
                        body,
                        created,
                    )
                )
            elif kind == "vote":
                tables["votes"].append(
                    (
                        uri,
                        rkey,
                        commit["cid"],
                        commit["rev"],
                        repo,
                        rec["subject"]["uri"],
                        rec["subject"]["cid"],
                        1 if rec["direction"] == "up" else -1,
                        created,
                    )
                )
            else:
                tables["subscriptions"].append(
                    (
                        uri,
                        repo,
                        rkey,
                        rec["subject"],
                        rec["contentVisibility"],
                        commit["cid"],
                        created,
                    )
                )
    return tables


BASELINE_SQL = {
    "communities": """INSERT INTO communities (did, name, created_by, hosted_by, record, record_cid,
        created_at) SELECT u.a, u.b, u.c, u.d, u.e::jsonb, u.f, u.g FROM unnest(%s::text[],
        %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
        AS u(a, b, c, d, e, f, g)""",
    "posts": """INSERT INTO posts (uri, rkey, cid, community_did, author_did, title, content,
        record, created_at, ranked_at) SELECT u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h::jsonb, u.i,
        u.i FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
        %s::text[], %s::text[], %s::timestamptz[]) AS u(a, b, c, d, e, f, g, h, i)""",
    "comments": """INSERT INTO comments (uri, rkey, cid, commenter_did, root_uri, root_cid,
        parent_uri, parent_cid, content, record, created_at, ranked_at) SELECT u.a, u.b, u.c, u.d,
        u.e, u.f, u.g, u.h, u.i, u.j::jsonb, u.k, u.k FROM unnest(%s::text[], %s::text[],
        %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
        %s::text[], %s::timestamptz[]) AS u(a, b, c, d, e, f, g, h, i, j, k)""",
    "votes": """INSERT INTO votes (uri, rkey, cid, rev, voter_did, subject_uri, subject_cid,
        direction, created_at) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[],
        %s::text[], %s::text[], %s::text[], %s::text[], %s::smallint[], %s::timestamptz[])""",
    "subscriptions": """INSERT INTO subscriptions (uri, user_did, rkey, community_did,
        content_visibility, record_cid, created_at) SELECT * FROM unnest(%s::text[], %s::text[],
        %s::text[], %s::text[], %s::smallint[], %s::text[], %s::timestamptz[])""",
}


def run_baseline(
    conninfo: str, tables: dict[str, list[tuple[Any, ...]]], batch: int
) -> tuple[int, float]:
    rows = sum(len(v) for v in tables.values())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        start = time.perf_counter()
        for name, data in tables.items():
            for i in range(0, len(data), batch):
                chunk = data[i : i + batch]
                with conn.transaction():
                    conn.execute(
                        BASELINE_SQL[name], [list(col) for col in zip(*chunk, strict=True)]
                    )
        return rows, time.perf_counter() - start


def prepare_only(indexer: Any, path: Path, batch: int) -> tuple[int, float]:
    """The CPU half of the indexer (decode, classify, validate), timed alone."""
    from coves.ingest.replay import open_stream, read_batches

    with open_stream(path) as stream:
        frames = list(read_batches(stream, batch))
    start = time.perf_counter()
    events = sum(indexer.prepare(chunk).frames for chunk in frames)
    return events, time.perf_counter() - start


def create_database(server: EmbeddedPostgres, name: str) -> str:
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.conninfo(name)


async def main_async(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="coves-bench-ingest-"))
    path = args.file
    if path is None:
        path = work / "stream.jsonl.zst"
        started = time.perf_counter()
        count = write(path, args.events)
        print(f"generated {count:,} events in {time.perf_counter() - started:.1f} s -> {path}")
    server = EmbeddedPostgres(work / "pg", durable=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        conninfo = await trio.to_thread.run_sync(create_database, server, "indexer")
        async with Database(conninfo, pool_size=2, statement_timeout_ms=60_000) as db:
            await migrate(db)
            indexer = build_indexer(
                db=db,
                instance_did=INSTANCE_DID,
                skip_did_web_verification=False,
                metrics=Metrics(),
            )
            summary = await replay(indexer, path, batch_size=args.batch_size, progress=Progress())
            checks = await db.fetchrow(
                "SELECT (SELECT count(*) FROM votes WHERE effective) AS effective_votes,"
                " (SELECT sum(upvote_count + downvote_count) FROM posts)"
                " + (SELECT sum(upvote_count + downvote_count) FROM comments) AS counted_votes,"
                " (SELECT count(*) FROM dead_letters) AS dead_letters"
            )
        print(
            f"indexer:  {summary.events:,} events in {summary.elapsed:.2f} s = "
            f"{summary.rate:,.0f} events/s (applied {summary.applied:,}, "
            f"dead-lettered {summary.dead_lettered:,}, reasons {dict(summary.reasons)})"
        )
        print(f"          check: {checks}")
        prepared, prepare_s = await trio.to_thread.run_sync(
            prepare_only, indexer, path, args.batch_size
        )
        print(
            f"prepare:  {prepared:,} events parsed+validated in {prepare_s:.2f} s = "
            f"{prepared / prepare_s:,.0f} events/s (Python side alone, no database)"
        )

        base_conninfo = await trio.to_thread.run_sync(create_database, server, "baseline")
        async with Database(base_conninfo, pool_size=1) as base_db:
            await migrate(base_db)
        tables = await trio.to_thread.run_sync(baseline_rows, path)
        rows, elapsed = await trio.to_thread.run_sync(
            run_baseline, base_conninfo, tables, args.batch_size
        )
        base_rate = rows / elapsed
        print(
            f"baseline: {rows:,} rows in {elapsed:.2f} s = {base_rate:,.0f} rows/s (plain INSERT)"
        )
        print(f"ratio:    indexer / baseline = {summary.rate / base_rate:.2f}")
        print(f"nproc:    {os.cpu_count()}  batch size: {args.batch_size}  durable: True")
        nursery.cancel_scope.cancel()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)  # the two databases: gigabytes at full scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated stream and databases"
    )
    trio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()
