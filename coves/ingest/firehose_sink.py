"""The firehose source's Sink: decodes frames, checks what it must, indexes the rest.

Wraps the shared :class:`~coves.ingest.indexer.Indexer` for one source (one
PDS or relay), whose cursor is the stream's ``seq`` stored under its own
name (``firehose:<host>``) in the same transaction as the batch.

Per batch, in two steps (the ``Sink`` contract; the consumer stages batch N+1
while N commits, ``coves.ingest.pipeline``). ``stage``: frames are decoded in
a worker thread (:func:`coves.ingest.firehose.decode_frame`); then what needs
the network happens here, in order: with ``verify``, each commit that touches
our collections has its signature checked against the repo's ``#atproto`` key
and each of its operations proven in the signed tree (failures are
dead-lettered, reason ``bad_signature`` / ``bad_proof``); ``tooBig`` commits
have their records fetched from the repo's PDS (``com.atproto.sync.getRecord``)
and ``#sync`` events the whole repository (``getRepo``), whose records are
re-indexed at the sync's rev and whose vanished records are deleted; then the
events are parsed like Jetstream's. ``commit`` is the indexer's transaction.
A ``#sync`` compares the repository with what is indexed, so a batch holding
one is staged only once the batch before it has committed.

Sequence bookkeeping: a ``seq`` that skips ahead of the last one seen is a
gap (logged and counted: relays may skip numbers legitimately, a PDS does
not), and ``#info OutdatedCursor`` means the server no longer had events
from our cursor on: events were lost and need a backfill.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import trio

from coves import clock
from coves.atproto import mst
from coves.atproto.car import Car, CarError, cid_text, read_car
from coves.atproto.commit import read_commit
from coves.atproto.keys import PublicKey
from coves.db import Database
from coves.db.queries import ingest as q
from coves.ingest.apply import Batch
from coves.ingest.events import DeadLetter
from coves.ingest.firehose import (
    PREFIX,
    Decoded,
    Op,
    as_json,
    commit_message,
    decode_frame,
    frame_text,
)
from coves.ingest.indexer import Indexer
from coves.ingest.types import BatchResult, CpuRunner, Frame, in_thread
from coves.logs import get_logger
from coves.metrics import Metrics

log = get_logger(__name__)

BAD_SIGNATURE = "bad_signature"
BAD_PROOF = "bad_proof"
FETCH_FAILED = "fetch_failed"
MAX_REPO_BYTES = 256 * 1024 * 1024
MAX_RECORD_BYTES = 8 * 1024 * 1024


class KeyResolver(Protocol):
    async def signing_key(self, did: str, *, refresh: bool = False) -> PublicKey | None:
        """The ``#atproto`` key of ``did``'s document (None when it has none)."""
        ...


class RepoFetcher(Protocol):
    async def get_record(self, did: str, collection: str, rkey: str) -> bytes:
        """``com.atproto.sync.getRecord`` from the repo's PDS: a CAR with the proof."""
        ...

    async def get_repo(self, did: str) -> bytes:
        """``com.atproto.sync.getRepo`` from the repo's PDS: the whole repository as a CAR."""
        ...


class FetchFailed(Exception):
    pass


@dataclass(eq=False)
class Staged:
    """A batch ready to commit; ``committed`` is set once its commit has ended."""

    batch: Batch
    committed: trio.Event = field(default_factory=trio.Event)


@dataclass
class FirehoseStats:
    frames: Counter[str]
    gaps: int = 0
    gap_events: int = 0
    outdated_cursor: int = 0
    errors: int = 0
    last_seq: int | None = None


class FirehoseSink:
    def __init__(
        self,
        indexer: Indexer,
        db: Database,
        *,
        source: str,
        metrics: Metrics,
        verify: bool = False,
        keys: KeyResolver | None = None,
        fetcher: RepoFetcher | None = None,
    ) -> None:
        if verify and keys is None:
            raise ValueError("verifying signatures needs a key resolver")
        self.indexer = indexer
        self._db = db
        self.source = source
        self.verify = verify
        self._keys = keys
        self._fetcher = fetcher
        self.stats = FirehoseStats(Counter())
        self._last_time_us = 0
        self._last_staged: trio.Event | None = None  # the latest staged batch's ``committed``
        # Labelled by source: each FIREHOSE_URL entry counts apart (nurseries/jetstream.py).
        mine = (source,)
        self._m_frames = metrics.counter(
            "coves_firehose_frame_types_total",
            "firehose frames decoded, by type",
            ["source", "type"],
        )
        self._m_gaps = metrics.counter(
            "coves_firehose_seq_gaps_total", "jumps forward in the firehose seq", ["source"]
        ).labels(*mine)
        self._m_gap_events = metrics.counter(
            "coves_firehose_seq_gap_events_total",
            "sequence numbers skipped by those jumps",
            ["source"],
        ).labels(*mine)
        self._m_outdated = metrics.counter(
            "coves_firehose_outdated_cursor_total",
            "#info OutdatedCursor: the server had no events from our cursor on (events lost)",
            ["source"],
        ).labels(*mine)
        self._m_errors = metrics.counter(
            "coves_firehose_error_frames_total", "error frames by name", ["source", "error"]
        )
        self._m_verify = metrics.counter(
            "coves_firehose_verifications_total", "commit checks by outcome", ["source", "outcome"]
        )
        self._m_fetches = metrics.counter(
            "coves_firehose_fetches_total",
            "records and repos fetched by kind and outcome",
            ["source", "kind", "outcome"],
        )

    # -- Sink -------------------------------------------------------------------------
    async def load_cursor(self) -> int | None:
        cursor = await self.indexer.open_source(self.source)
        self.stats.last_seq = cursor
        # A new session: batches staged in the last one were dropped, not committed.
        self._last_staged = None
        return cursor

    async def apply(self, frames: Sequence[Frame]) -> BatchResult:
        """Stage and commit one batch (a caller with nothing to overlap)."""
        return await self.commit(await self.stage(frames, in_thread))

    async def stage(self, frames: Sequence[Frame], cpu: CpuRunner) -> Staged:
        """Decode, check signatures, fetch ``tooBig`` records, then parse.

        The common batch (no verification, nothing to fetch) is decoded and
        parsed in one CPU step. A batch holding a ``#sync`` compares the
        repository with what is indexed, so it waits until every batch staged
        before it has committed.
        """
        now_us = int(clock.wall_now() * 1_000_000)  # read here: Trio's clock, not a thread's
        decoded, batch = await cpu(self._decode, frames, now_us)
        self._bookkeeping(decoded)
        if batch is None:
            if self.verify:
                await self._verify(decoded)
            for item in decoded:
                if item.too_big and item.ops:
                    await self._fetch_records(item)
            if any(item.kind == "sync" for item in decoded):
                if self._last_staged is not None:
                    await self._last_staged.wait()
                for item in decoded:
                    if item.kind == "sync":
                        await self._resync(item)
            batch = await cpu(self._prepare, decoded, now_us)
        staged = Staged(batch)
        self._last_staged = staged.committed
        return staged

    async def commit(
        self, staged: Staged, meanwhile: Callable[[], None] | None = None
    ) -> BatchResult:
        try:
            return await self.indexer.commit(staged.batch, meanwhile)
        finally:
            staged.committed.set()  # or failed: either way nothing of it is pending

    def _decode(self, frames: Sequence[Frame], now_us: int) -> tuple[list[Decoded], Batch | None]:
        """Decode (CPU); parse too unless a step needs the network or the database
        first (verification, a ``tooBig`` fetch, a ``#sync``)."""
        # Without verification only the record blocks are read out of each CAR.
        decoded = _decode_all(frames, self.verify)
        if self.verify or any(
            (item.too_big and item.ops) or item.kind == "sync" for item in decoded
        ):
            return decoded, None
        return decoded, self._prepare(decoded, now_us)

    def _prepare(self, decoded: list[Decoded], now_us: int) -> Batch:
        messages: list[tuple[dict[str, Any], str]] = []
        dead: list[DeadLetter] = []
        events = 0
        cursor: int | None = None
        for item in decoded:
            for message in item.messages:
                message["time_us"] = self._monotonic(message["time_us"])
                messages.append((message, as_json(message)))
            dead.extend(item.dead)
            events += max(1, len(item.messages) + len(item.dead))
            if item.seq is not None and (cursor is None or item.seq > cursor):
                cursor = item.seq
        return self.indexer.prepare_messages(
            messages,
            frames=events,
            source=self.source,
            cursor=cursor,
            dead=dead,
            now_us=now_us,
        )

    # -- bookkeeping ------------------------------------------------------------------
    def _monotonic(self, time_us: int) -> int:
        """Event times strictly increase within a source (the stream's ``time`` has
        millisecond precision; identity and account changes are ordered by it)."""
        time_us = max(time_us, self._last_time_us + 1)
        self._last_time_us = time_us
        return time_us

    def _bookkeeping(self, decoded: list[Decoded]) -> None:
        stats = self.stats
        kinds = Counter(item.kind for item in decoded)
        stats.frames.update(kinds)
        for kind, count in kinds.items():  # one metric update per kind and batch
            self._m_frames.labels(self.source, kind).inc(count)
        for item in decoded:
            if item.kind == "info":
                if item.name == "OutdatedCursor":
                    stats.outdated_cursor += 1
                    self._m_outdated.inc()
                    log.error(
                        "firehose cursor is older than the server keeps; events were lost",
                        source=self.source,
                        cursor=stats.last_seq,
                        message=item.message,
                    )
                else:
                    log.info("firehose info", source=self.source, name=item.name)
            elif item.kind == "error":
                stats.errors += 1
                name = item.name if item.name in ("FutureCursor", "ConsumerTooSlow") else "other"
                self._m_errors.labels(self.source, name).inc()
                log.error(
                    "firehose error frame",
                    source=self.source,
                    error=item.name,
                    message=item.message,
                    cursor=stats.last_seq,
                )
            if item.seq is None:
                continue
            last = stats.last_seq
            if last is not None and item.seq > last + 1:
                stats.gaps += 1
                stats.gap_events += item.seq - last - 1
                self._m_gaps.inc()
                self._m_gap_events.inc(item.seq - last - 1)
                log.warning(
                    "firehose seq gap",
                    source=self.source,
                    after=last,
                    next=item.seq,
                    missing=item.seq - last - 1,
                )
            if last is None or item.seq > last:
                stats.last_seq = item.seq

    # -- signatures -------------------------------------------------------------------
    async def _verify(self, decoded: list[Decoded]) -> None:
        # tooBig commits have no blocks: their fetched records carry their own proof.
        commits = [
            item
            for item in decoded
            if item.kind == "commit" and item.ops and item.did and item.car is not None
        ]
        if not commits:
            return
        keys = {did: await self._key(did) for did in {item.did for item in commits if item.did}}
        # One thread hop for the batch: hashing and ECDSA are CPU work.
        problems = await trio.to_thread.run_sync(
            lambda: [_check_commit(item, keys[item.did or ""]) for item in commits]
        )
        for item, first in zip(commits, problems, strict=True):
            problem = first
            key = keys[item.did or ""]
            if problem is not None and key is not None and item.did is not None:
                # The key may have rotated since we cached the document.
                fresh = await self._key(item.did, refresh=True)
                if fresh is not None and fresh != key:
                    problem = await trio.to_thread.run_sync(_check_commit, item, fresh)
            if problem is None:
                self._m_verify.labels(self.source, "ok").inc()
                continue
            reason, detail = problem
            self._m_verify.labels(self.source, reason).inc()
            log.warning(
                "firehose commit refused",
                source=self.source,
                did=item.did,
                reason=reason,
                detail=detail,
            )
            _refuse(item, reason, detail)

    async def _key(self, did: str, *, refresh: bool = False) -> PublicKey | None:
        assert self._keys is not None
        try:
            return await self._keys.signing_key(did, refresh=refresh)
        except Exception as exc:  # an unresolvable DID cannot be verified
            log.warning("firehose cannot resolve the repo key", did=did, error=repr(exc))
            return None

    # -- fetching ---------------------------------------------------------------------
    async def _fetch_records(self, item: Decoded) -> None:
        """A ``tooBig`` commit: each of our records comes from the PDS, with its proof."""
        assert item.did is not None and item.rev is not None and item.time_us is not None
        for op in item.ops:
            if op.cid is None:
                item.messages.append(commit_message(item.did, item.time_us, item.rev, op, None))
                continue
            try:
                if self._fetcher is None:
                    raise FetchFailed("no fetcher configured")
                car = read_car(await self._fetcher.get_record(item.did, op.collection, op.rkey))
                record = await self._proven_record(item.did, car, op)
            except (FetchFailed, CarError) as exc:
                self._m_fetches.labels(self.source, "record", "failed").inc()
                item.dead.append(_dead(item, FETCH_FAILED, f"getRecord {op.path}: {exc}", op))
                continue
            self._m_fetches.labels(self.source, "record", "ok").inc()
            item.messages.append(commit_message(item.did, item.time_us, item.rev, op, record))

    async def _signed_tree(self, did: str, car: Car) -> bytes:
        """The MST root of a fetched CAR's commit, once the commit is ``did``'s (and,
        with ``verify``, signed by its key)."""
        if not car.roots:
            raise CarError("the CAR has no root commit")
        commit = read_commit(car, car.roots[0])
        if commit.did != did:
            raise CarError("the commit is for another repository")
        if self.verify:
            key = await self._key(did)
            if key is None or not commit.verify(key):
                raise CarError("bad commit signature")
        return commit.data

    async def _proven_record(self, did: str, car: Car, op: Op) -> object:
        found = mst.lookup(car, await self._signed_tree(did, car), op.path)
        if found is None:
            raise CarError("the record is not in the repository any more")
        record = car.decode(found, atjson=True)
        if record is None:
            raise CarError("record block missing")
        op.cid = found
        return record

    async def _resync(self, item: Decoded) -> None:
        """``#sync``: the repository was replaced; index it again from the PDS.

        Only repositories we hold records of are fetched: a relay sends ``#sync``
        for accounts all over the network (every new account starts with one),
        and a repository we index nothing of has nothing to repair here. Its
        ``social.coves.*`` records written from then on arrive as commits.
        """
        assert item.did is not None and item.rev is not None and item.time_us is not None
        did, rev, when = item.did, item.rev, item.time_us
        indexed = await q.live_record_uris(self._db, did)
        if not indexed:
            self._m_fetches.labels(self.source, "repo", "skipped").inc()
            return
        try:
            if self._fetcher is None:
                raise FetchFailed("no fetcher configured")
            car = read_car(await self._fetcher.get_repo(did))
            root = await self._signed_tree(did, car)
            records = await trio.to_thread.run_sync(_our_records, car, root)
        except (FetchFailed, CarError) as exc:
            self._m_fetches.labels(self.source, "repo", "failed").inc()
            log.error("firehose #sync: cannot fetch the repository", did=did, error=str(exc))
            item.dead.append(
                DeadLetter(
                    FETCH_FAILED, f"getRepo: {exc}"[:500], "", kind="sync", did=did, time_us=when
                )
            )
            return
        self._m_fetches.labels(self.source, "repo", "ok").inc()
        present = set()
        for (collection, rkey), (cid, record) in records.items():
            present.add(f"at://{did}/{collection}/{rkey}")
            op = Op("update", collection, rkey, cid)
            item.messages.append(commit_message(did, when, rev, op, record))
        for uri in indexed:
            if uri not in present:
                collection, _, rkey = uri.removeprefix(f"at://{did}/").partition("/")
                op = Op("delete", collection, rkey, None)
                item.messages.append(commit_message(did, when, rev, op, None))
        log.info("firehose #sync: repository re-indexed", did=did, records=len(records))


def _decode_all(frames: Sequence[Frame], whole_car: bool) -> list[Decoded]:
    out = []
    for frame in frames:
        data = frame.data
        if isinstance(data, str):  # a text frame has no place on this stream
            data = data.encode()
        out.append(decode_frame(data, whole_car=whole_car))
    return out


def _check_commit(item: Decoded, key: PublicKey | None) -> tuple[str, str] | None:
    """None when the signed commit is the repo's and proves each of our operations."""
    assert item.car is not None and item.commit is not None
    if key is None:
        return BAD_SIGNATURE, "no #atproto key for the repository"
    try:
        commit = read_commit(item.car, item.commit)
    except CarError as exc:
        return BAD_SIGNATURE, str(exc)
    if commit.did != item.did or commit.rev != item.rev:
        return BAD_SIGNATURE, "the signed commit names another repository or rev"
    if not commit.verify(key):
        return BAD_SIGNATURE, "signature does not verify with the repo's #atproto key"
    try:
        for op in item.ops:
            found = mst.lookup(item.car, commit.data, op.path)
            if found != op.cid:
                return BAD_PROOF, f"{op.path}: the signed tree holds {_show(found)}"
    except CarError as exc:
        return BAD_PROOF, str(exc)
    return None


def _show(cid: bytes | None) -> str:
    return "nothing" if cid is None else cid_text(cid)


def _our_records(car: Car, root: bytes) -> dict[tuple[str, str], tuple[bytes, object]]:
    out: dict[tuple[str, str], tuple[bytes, object]] = {}
    for key, cid in mst.walk(car, root):
        if not key.startswith(PREFIX):
            continue
        collection, _, rkey = key.partition("/")
        record = car.decode(cid, atjson=True)
        if record is not None:
            out[(collection, rkey)] = (cid, record)
    return out


def _refuse(item: Decoded, reason: str, detail: str) -> None:
    letters = [_dead(item, reason, detail, op) for op in item.ops]
    item.messages = []
    item.dead = letters


def _dead(item: Decoded, reason: str, detail: str, op: Op) -> DeadLetter:
    text = frame_text(b"")
    if item.messages:
        text = as_json(item.messages[0])
    return DeadLetter(
        reason,
        detail[:500],
        text,
        kind="commit",
        did=item.did,
        collection=op.collection,
        rkey=op.rkey,
        time_us=item.time_us,
    )


# -- production collaborators -----------------------------------------------------------------


class ResolverKeys:
    """Keys from the identity layer (cached DID documents, refreshed on demand)."""

    def __init__(self, resolver: Any) -> None:
        self._resolver = resolver

    async def signing_key(self, did: str, *, refresh: bool = False) -> PublicKey | None:
        doc = await self._resolver.document(did, force_refresh=refresh)
        key: PublicKey | None = doc.signing_key
        return key


class PdsFetcher:
    """Fetches from the PDS named in the repo's DID document, through the safe fetcher."""

    def __init__(self, resolver: Any, fetcher: Any) -> None:
        self._resolver = resolver
        self._fetcher = fetcher

    async def _pds(self, did: str) -> str:
        try:
            doc = await self._resolver.document(did)
        except Exception as exc:
            raise FetchFailed(f"cannot resolve {did}: {exc}") from exc
        if not doc.pds_url:
            raise FetchFailed(f"{did} names no PDS")
        return str(doc.pds_url).rstrip("/")

    async def _get(self, url: str, limit: int) -> bytes:
        try:
            response = await self._fetcher.get(
                url, accept="application/vnd.ipld.car", max_bytes=limit
            )
        except Exception as exc:
            raise FetchFailed(str(exc)) from exc
        content: bytes = response.content
        return content

    async def get_record(self, did: str, collection: str, rkey: str) -> bytes:
        query = urlencode({"did": did, "collection": collection, "rkey": rkey})
        base = await self._pds(did)
        return await self._get(f"{base}/xrpc/com.atproto.sync.getRecord?{query}", MAX_RECORD_BYTES)

    async def get_repo(self, did: str) -> bytes:
        base = await self._pds(did)
        query = urlencode({"did": did})
        return await self._get(f"{base}/xrpc/com.atproto.sync.getRepo?{query}", MAX_REPO_BYTES)
