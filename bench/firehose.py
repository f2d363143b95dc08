"""Firehose ingestion next to Jetstream ingestion of the same events, in one run.

A capture of N events (bench/gen_stream.py's mix) is written as firehose
frames (real signed commits whose CARs hold the record and its MST proof,
built by the test suite's repository builder), optionally with foreign
``app.bsky.*`` commits interleaved that the firehose path must skip, and as
the Jetstream JSON lines a Jetstream server would make of the same commits
(so both paths index the same rows). The collector runs with the server's
``GC_THRESHOLDS``. Then, on one embedded PostgreSQL, each capture is
indexed into its own empty database through the production path (Jetstream:
``Indexer.apply``; firehose: ``FirehoseSink.apply`` over the same indexer
code) in batches of the live consumer's size, and the decode step alone is
timed too. Prints events/s for each and the ratio.

    .venv/bin/python bench/firehose.py [--events 200000] [--noise 0.0] [--verify] [--sequential]
    .venv/bin/python bench/firehose.py record ws://HOST:PORT --frames N --out capture.fh

``record`` saves frames from a live firehose (e.g. the test PDS) in the
capture format: a varint length before each frame.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cbrrr
import orjson
import psutil
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_stream import INSTANCE_DID, generate
from bench.ingest import create_database
from coves.atproto.car import read_varint, write_varint
from coves.config import Settings
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres
from coves.db.migrate import migrate
from coves.ingest.build import build_indexer
from coves.ingest.firehose import decode_frame
from coves.ingest.firehose_sink import FirehoseSink
from coves.ingest.pipeline import run_pipelined
from coves.ingest.types import BatchResult, Frame, in_thread
from coves.interpreter import apply_gc_thresholds
from coves.logs import configure_logging
from coves.metrics import Metrics
from tests.support.fake_repo import FakeRepo, Write, commit_body, encode_frame


def synthesize(
    events: int, noise: float, seed: int = 1
) -> tuple[list[str], list[bytes], dict[str, FakeRepo]]:
    """The same events as firehose frames (plus foreign noise) and as the Jetstream
    lines a Jetstream server would make of those frames: the commit's rev, the
    record's real CID and the record as the block holds it, so both paths index
    exactly the same rows."""
    import random

    rnd = random.Random(seed)
    repos: dict[str, FakeRepo] = {}
    lines: list[str] = []
    frames: list[bytes] = []
    seq = 0
    for event in generate(events, seed):
        repo = repos.setdefault(event["did"], FakeRepo(event["did"]))
        commit = event["commit"]
        writes = [
            # Deletes carry no record (gen_stream emits edits and deletes too).
            Write(commit["operation"], commit["collection"], commit["rkey"], commit.get("record"))
        ]
        # ``noise`` foreign commits before each event on average (2.5 -> 2 or 3).
        for _ in range(int(noise) + (rnd.random() < noise - int(noise))):
            seq += 1
            foreign = repo.commit(
                [Write("create", "app.bsky.feed.like", f"3l{seq:011d}", {"subject": "x"})]
            )
            frames.append(encode_frame("#commit", commit_body(foreign, seq, event["time_us"])))
        seq += 1
        built = repo.commit(writes)
        frames.append(encode_frame("#commit", commit_body(built, seq, event["time_us"])))
        lines.append(orjson.dumps(jetstream_event(built, event["time_us"])).decode())
    return lines, frames, repos


def jetstream_event(built: Any, time_us: int) -> dict[str, Any]:
    """Jetstream's rendering of a one-operation commit (cbrrr's own CID text and
    atjson mode, not the firehose path's code)."""
    (op,) = built.ops
    collection, _, rkey = op["path"].partition("/")
    commit: dict[str, Any] = {
        "rev": built.rev,
        "operation": op["action"],
        "collection": collection,
        "rkey": rkey,
    }
    if op["cid"] is not None:
        commit["cid"] = op["cid"].encode()
        commit["record"] = cbrrr.decode_dag_cbor(
            built.blocks[op["cid"].cid_bytes], atjson_mode=True
        )
    return {"did": built.did, "time_us": time_us, "kind": "commit", "commit": commit}


def write_capture(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as out:
        for frame in frames:
            out.write(write_varint(len(frame)))
            out.write(frame)


def read_capture(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames, offset = [], 0
    while offset < len(data):
        size, offset = read_varint(data, offset)
        frames.append(data[offset : offset + size])
        offset += size
    return frames


def batches(items: list[Any], size: int) -> Iterator[list[Frame]]:
    for start in range(0, len(items), size):
        yield [Frame(item, 0.0) for item in items[start : start + size]]


def postgres_cpu() -> float:
    """CPU seconds used so far by the embedded PostgreSQL (this process's children)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name().startswith("postgres"):
                times = child.cpu_times()
                total += times.user + times.system
    return total


class Keys:
    def __init__(self, repos: dict[str, FakeRepo]) -> None:
        self.repos = repos

    async def signing_key(self, did: str, *, refresh: bool = False) -> Any:
        repo = self.repos.get(did)
        return None if repo is None else repo.key.public()


async def index(
    db: Database, frames: list[Any], size: int, sink: Any = None, *, pipelined: bool = True
) -> tuple[int, float, float]:
    """Index ``frames`` as the live consumer does: the next batch staged while this
    one commits (``coves.ingest.pipeline``), or one batch after the other."""
    indexer = build_indexer(
        db=db, instance_did=INSTANCE_DID, skip_did_web_verification=False, metrics=Metrics()
    )
    target = sink(indexer) if sink is not None else indexer
    await target.load_cursor()
    applied, committing = 0, 0.0

    def done(_batch: Any, result: BatchResult, seconds: float) -> None:
        nonlocal applied, committing
        applied += result.applied
        committing += seconds

    async def chunks() -> AsyncIterator[list[Frame]]:
        for chunk in batches(frames, size):
            yield chunk

    started, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu()
    if pipelined:
        await run_pipelined(target, chunks(), done)
    else:
        for chunk in batches(frames, size):
            staged = await target.stage(chunk, in_thread)
            began = time.perf_counter()
            done(chunk, await target.commit(staged, None), time.perf_counter() - began)
    # process_time counts every thread of this process: Coves' side of the work.
    elapsed = time.perf_counter() - started
    print(
        f"          committing {committing:.2f} s of {elapsed:.2f} s; "
        f"PostgreSQL {(postgres_cpu() - pg) / elapsed:.2f} cores"
    )
    return applied, elapsed, time.process_time() - cpu


async def run(args: argparse.Namespace) -> None:
    configure_logging("warning")  # four databases' migrations would bury the figures
    # The collector as the server sets it (GC_THRESHOLDS), for both paths.
    apply_gc_thresholds(Settings().gc_thresholds)
    work = Path(tempfile.mkdtemp(prefix="coves-bench-firehose-"))
    started = time.perf_counter()
    lines, frames, repos = synthesize(args.events, args.noise)
    write_capture(work / "capture.fh", frames)
    print(
        f"synthesized {len(lines):,} events ({len(frames):,} firehose frames, "
        f"{sum(map(len, frames)) // len(frames):,} bytes each on average) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    frames = read_capture(work / "capture.fh")

    t0 = time.perf_counter()
    decoded = sum(len(decode_frame(frame).messages) for frame in frames)
    decode_s = time.perf_counter() - t0
    print(
        f"decode:   {len(frames):,} frames in {decode_s:.2f} s = "
        f"{len(frames) / decode_s:,.0f} frames/s ({decoded:,} events; no database)"
    )

    server = EmbeddedPostgres(work / "pg", durable=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        results: dict[tuple[str, str], float] = {}
        modes = ["pipelined", "sequential"] if args.sequential else ["pipelined"]
        for mode in modes:
            for name in ("jetstream", "firehose"):
                conninfo = await trio.to_thread.run_sync(create_database, server, f"{name}_{mode}")
                async with Database(conninfo, pool_size=2, statement_timeout_ms=60_000) as db:
                    await migrate(db)
                    if name == "jetstream":
                        applied, elapsed, cpu = await index(
                            db, lines, args.batch_size, pipelined=mode == "pipelined"
                        )
                    else:

                        def sink(indexer: Any, db: Database = db) -> FirehoseSink:
                            return FirehoseSink(
                                indexer,
                                db,
                                source="firehose:bench",
                                metrics=Metrics(),
                                verify=args.verify,
                                keys=Keys(repos),
                            )

                        applied, elapsed, cpu = await index(
                            db, frames, args.batch_size, sink, pipelined=mode == "pipelined"
                        )
                results[name, mode] = len(lines) / elapsed
                print(
                    f"{name:9s} {mode:10s} {len(lines):,} events in {elapsed:.2f} s = "
                    f"{results[name, mode]:,.0f} events/s (applied {applied:,}; "
                    f"Python {cpu / elapsed:.2f} cores, {cpu / len(lines) * 1e6:.0f} µs/event)"
                )
            ratio = results["firehose", mode] / results["jetstream", mode]
            print(f"ratio:    {mode}: firehose / jetstream = {ratio:.2f}")
        if args.sequential:
            for name in ("jetstream", "firehose"):
                gain = results[name, "pipelined"] / results[name, "sequential"]
                print(f"pipelined / sequential: {name} {gain:.2f}x")
        print(
            f"nproc:    {os.cpu_count()}  batch size: {args.batch_size}  noise: {args.noise}  "
            f"verify: {args.verify}"
        )
        nursery.cancel_scope.cancel()
    shutil.rmtree(work, ignore_errors=True)


async def record(args: argparse.Namespace) -> None:
    from coves.ingest.stream import subscribe_repos_url
    from nurseries.jetstream import websocket_opener

    frames: list[bytes] = []
    async with websocket_opener()(subscribe_repos_url(args.url, args.cursor)) as ws:
        with trio.move_on_after(args.seconds):
            while len(frames) < args.frames:
                message = await ws.get_message()
                frames.append(message if isinstance(message, bytes) else message.encode())
    write_capture(args.out, frames)
    print(f"recorded {len(frames):,} frames to {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("record", help="save frames from a live firehose")
    rec.add_argument("url")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--frames", type=int, default=10_000)
    rec.add_argument("--cursor", type=int, default=0)
    rec.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="foreign app.bsky commits before each event, on average (skipped)",
    )
    parser.add_argument("--verify", action="store_true", help="FIREHOSE_VERIFY=true")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="also index both captures one batch after the other (the consumer before pipelining)",
    )
    args = parser.parse_args()
    trio.run(record if args.command == "record" else run, args)


if __name__ == "__main__":
    main()
