"""Indexed data for the backup tests: a generated stream through the production indexer."""

from __future__ import annotations

import time
from typing import Any

import orjson
import trio

from bench.gen_stream import INSTANCE_DID, generate
from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.ingest.types import Frame
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics


def events(count: int, *, seed: int = 7, communities: int = 8) -> list[dict[str, Any]]:
    """Votes, comments, posts, subscriptions, edits and deletes, timed over the last minutes."""
    start = int(time.time() * 1_000_000) - 600_000_000
    return list(generate(count, seed=seed, communities=communities, start_us=start))


async def index(conninfo: str, stream: list[dict[str, Any]], *, cursor: bool = True) -> None:
    """Apply ``stream`` as live ingestion would (cursor included), plus one dead letter."""
    async with Database(conninfo, pool_size=2) as db:
        indexer = Indexer(
            db, instance_did=INSTANCE_DID, metrics=Metrics(), validator=LexiconRegistry.load()
        )
        frames = [Frame(orjson.dumps(e), 0.0) for e in stream] + [Frame(b"{broken", 0.0)]
        with trio.fail_after(60):
            for start in range(0, len(frames), 100):
                batch = indexer.prepare(frames[start : start + 100])
                if not cursor:
                    batch.cursor = None
                await indexer.commit(batch)
