"""Microbenchmark: lexicon validation cost per record, against JSON parsing as a baseline.

Ingestion must parse every Jetstream event anyway, so the figure that matters
is how validation compares with ``orjson.loads`` of the same record; both are
measured in the same run. Each case validates a batch of distinct records
(unique DIDs and record keys) so the identifier caches see realistic misses;
a second column repeats one record (all cache hits). Prints µs per record and
records per second for a typical vote, comment and post. Times are this
process's CPU time (``time.process_time``), which other tenants of a shared
machine disturb far less than wall time.

    .venv/bin/python bench/lexicon_validate.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coves.lexicon import LexiconRegistry
from coves.lexicon.formats import clear_caches
from tests.lexicon.examples import COMMENT, IMAGES_POST, POST, VOTE


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Seconds per call, best of three timed batches."""
    n = 1
    while True:
        start = time.process_time()
        for _ in range(n):
            fn()
        elapsed = time.process_time() - start
        if elapsed > seconds / 10:
            break
        n *= 2
    best = elapsed / n
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best


TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def tid(i: int) -> str:
    out = ""
    for _ in range(12):
        out = TID_CHARS[i % 32] + out
        i //= 32
    return "3" + out


def variants(record: dict[str, Any], n: int) -> list[bytes]:
    """n copies of a record whose DIDs and record keys are all different."""
    raw = orjson.dumps(record)
    out = []
    for i in range(n):
        key = tid(i).encode()
        out.append(
            raw.replace(b"3kabcdefghijk", key)
            .replace(b"3kabcdefghijl", key[::-1])
            .replace(b"user1234567890abcdefg", b"u" + key)
        )
    return out


def batch_per_record(
    fn: Callable[[], object], n: int, rounds: int = 3, setup: Callable[[], object] = lambda: None
) -> float:
    """Best of ``rounds`` passes over a batch; ``setup`` runs untimed before each pass."""
    best = float("inf")
    for _ in range(rounds):
        setup()
        start = time.process_time()
        fn()
        best = min(best, (time.process_time() - start) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()

    registry = LexiconRegistry.load()
    long_post: dict[str, Any] = copy.deepcopy(POST)
    long_post["title"] = "Überschrift mit Umlauten und Emoji 🎉 " * 5
    paragraph = "Ein längerer Absatz mit Unicode-Text — naïve café 👩‍💻. "
    long_post["content"] = (paragraph * 150).strip()
    cases = [
        ("vote", "social.coves.feed.vote", VOTE),
        ("comment", "social.coves.community.comment", COMMENT),
        ("post (external embed)", "social.coves.community.post", POST),
        ("post (2 images)", "social.coves.community.post", IMAGES_POST),
        ("post (8 KB non-ASCII)", "social.coves.community.post", long_post),
    ]
    print(f"cores: {os.cpu_count()} (shared machine); python {sys.version.split()[0]}")
    print(
        f"{'record':24} {'bytes':>6} {'parse µs':>9} {'validate µs':>12} {'ratio':>6} "
        f"{'rec/s':>9} {'warm µs':>8}"
    )
    for label, nsid, record in cases:
        raws = variants(record, args.batch)
        records = [orjson.loads(raw) for raw in raws]
        for value in records[:10]:
            registry.validate_record(nsid, value)

        def parse_all(raws: list[bytes] = raws) -> None:
            for raw in raws:
                orjson.loads(raw)

        def validate_all(
            nsid: str = nsid, records: list[Any] = records, check: Any = registry.validate_record
        ) -> None:
            for value in records:
                check(nsid, value)

        # Identifier caches start cold on every pass over the distinct records.
        validate = batch_per_record(validate_all, len(records), setup=clear_caches)
        parse = batch_per_record(parse_all, len(raws))
        warm = per_call(
            lambda nsid=nsid, record=record, check=registry.validate_record: check(nsid, record),
            args.seconds,
        )
        print(
            f"{label:24} {len(raws[0]):6d} {parse * 1e6:9.2f} {validate * 1e6:12.2f} "
            f"{validate / parse:6.1f} {1 / validate:9.0f} {warm * 1e6:8.2f}"
        )


if __name__ == "__main__":
    main()
