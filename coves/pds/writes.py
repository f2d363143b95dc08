"""Write to a PDS repo, then index the write at once: read-your-writes.

Every record Coves writes (community profiles here; votes, comments, posts,
subscriptions for users) goes through :class:`RepoWriter`. After the PDS
accepts a write, the written record, with the CID the PDS computed and the
rev of the commit that holds it, is handed to the **same** indexer the
Jetstream consumer uses, as the Jetstream event the stream will carry later.
So:

- the writer reads its write as soon as the call returns;
- the stream's echo of that commit has the same rev, so the rev-gated,
  idempotent indexer skips it as stale: it changes nothing;
- a newer write that reached the stream first wins over an older local one
  (the rev gate works both ways);
- a failed PDS write raises before anything local happens: nothing changes.

Indexing runs without the ingestion cursor (a local write must not move the
stream's position) and under the indexer's advisory lock, like a stream batch.
If indexing fails after a successful write (database trouble), the write is
still done: it is logged and the stream's copy indexes it later
(``Written.indexed`` is False).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from coves import clock
from coves.ingest.indexer import Indexer
from coves.ingest.types import Frame
from coves.logs import get_logger
from coves.pds.auth import PdsAuth
from coves.pds.client import PdsClient, RecordRef

log = get_logger(__name__)

Operation = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Written:
    """A record write the PDS accepted (``cid`` is None for a delete)."""

    uri: str
    cid: str | None
    rev: str | None
    indexed: bool


def commit_event(
    *,
    did: str,
    collection: str,
    rkey: str,
    operation: Operation,
    rev: str,
    cid: str | None,
    record: Mapping[str, Any] | None,
    time_us: int,
) -> bytes:
    """The Jetstream commit event for one record write (what the stream will carry)."""
    commit: dict[str, Any] = {
        "rev": rev,
        "operation": operation,
        "collection": collection,
        "rkey": rkey,
    }
    if operation != "delete":
        commit["record"] = {"$type": collection, **record} if record is not None else None
        commit["cid"] = cid
    return orjson.dumps({"did": did, "time_us": time_us, "kind": "commit", "commit": commit})


class RepoWriter:
    """PDS record writes that are indexed locally the moment the PDS accepts them."""

    def __init__(self, indexer: Indexer | None) -> None:
        self._indexer = indexer

    async def create(
        self,
        pds: PdsClient,
        auth: PdsAuth,
        *,
        repo: str,
        collection: str,
        record: Mapping[str, Any],
        rkey: str | None = None,
        validate: bool | None = None,
    ) -> Written:
        ref = await pds.create_record(
            auth, repo=repo, collection=collection, record=record, rkey=rkey, validate=validate
        )
        return await self._index_ref(repo, collection, "create", ref, record)

    async def put(
        self,
        pds: PdsClient,
        auth: PdsAuth,
        *,
        repo: str,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        swap_record: str | None = None,
        operation: Literal["create", "update"] = "update",
        validate: bool | None = None,
    ) -> Written:
        """``swap_record``: the CID the record has now (else 409 ``InvalidSwap``)."""
        ref = await pds.put_record(
            auth,
            repo=repo,
            collection=collection,
            rkey=rkey,
            record=record,
            swap_record=swap_record,
            validate=validate,
        )
        return await self._index_ref(repo, collection, operation, ref, record)

    async def delete(
        self,
        pds: PdsClient,
        auth: PdsAuth,
        *,
        repo: str,
        collection: str,
        rkey: str,
        swap_record: str | None = None,
    ) -> Written:
        rev = await pds.delete_record(
            auth, repo=repo, collection=collection, rkey=rkey, swap_record=swap_record
        )
        uri = f"at://{repo}/{collection}/{rkey}"
        indexed = False
        if rev is not None:
            indexed = await self.index(
                did=repo,
                collection=collection,
                rkey=rkey,
                operation="delete",
                rev=rev,
                cid=None,
                record=None,
            )
        return Written(uri=uri, cid=None, rev=rev, indexed=indexed)

    async def _index_ref(
        self,
        repo: str,
        collection: str,
        operation: Operation,
        ref: RecordRef,
        record: Mapping[str, Any],
    ) -> Written:
        indexed = False
        rkey = ref.uri.rsplit("/", 1)[-1]
        if ref.rev is not None:
            indexed = await self.index(
                did=repo,
                collection=collection,
                rkey=rkey,
                operation=operation,
                rev=ref.rev,
                cid=ref.cid,
                record=record,
            )
        return Written(uri=ref.uri, cid=ref.cid, rev=ref.rev, indexed=indexed)

    async def index(
        self,
        *,
        did: str,
        collection: str,
        rkey: str,
        operation: Operation,
        rev: str,
        cid: str | None,
        record: Mapping[str, Any] | None,
    ) -> bool:
        """Apply one write the PDS accepted, as its stream event; True if it changed state
        or was already there (the echo arrived first), False if it could not be indexed."""
        if self._indexer is None or not did.startswith("did:"):
            return False
        now_us = int(clock.wall_now() * 1_000_000)
        data = commit_event(
            did=did,
            collection=collection,
            rkey=rkey,
            operation=operation,
            rev=rev,
            cid=cid,
            record=record,
            time_us=now_us,
        )
        batch = self._indexer.prepare([Frame(data, clock.monotonic())], now_us=now_us)
        batch.cursor = None  # a local write never moves the stream's position
        try:
            result = await self._indexer.commit(batch)
        except Exception as exc:
            # The PDS has the write; the stream will deliver it. Not worth failing
            # a request that did what it was asked.
            log.warning(
                "indexing an accepted write failed; the stream will index it",
                collection=collection,
                did=did,
                error=type(exc).__name__,
            )
            return False
        if result.dead_lettered:
            log.warning(
                "an accepted write was refused by the indexer",
                collection=collection,
                did=did,
                reasons=result.reasons,
            )
            return False
        return True
