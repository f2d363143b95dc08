"""A fake ``com.atproto.sync.subscribeRepos`` server (a PDS's or relay's firehose).

The wire format is the real one: binary websocket frames of two DAG-CBOR
values, ``#commit`` bodies carrying a CAR of real, signed repository blocks
(built by :mod:`tests.support.fake_repo`), and the real cursor rules of the
reference PDS: no cursor is live, ``cursor=N`` replays every kept event with
``seq > N`` (``0``: everything kept), a cursor older than the oldest kept
event gets ``#info OutdatedCursor`` and then everything kept, and a cursor
ahead of the newest event gets an error frame ``FutureCursor`` and a close.

It reuses the fake Jetstream's connection machinery (wsproto server, TCP or
memory streams, drops, silence, unanswered pings, refusals); only what is
sent and where a cursor starts differ. It also serves the two sync reads the
sink may need (``getRecord``, ``getRepo``) to an ``httpx.MockTransport``-free
fetcher via :meth:`fetcher`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import trio
from wsproto.events import BytesMessage, CloseConnection

from tests.support.fake_jetstream import FakeJetstream, SubscribeRequest, _Conn
from tests.support.fake_repo import (
    Commit,
    FakeRepo,
    Write,
    commit_body,
    encode_frame,
    error_frame,
    iso,
)


class FakeFirehose(FakeJetstream):
    def __init__(self, *, keep: int | None = None, refuse_status: int | None = None) -> None:
        super().__init__(refuse_status=refuse_status)
        self.keep = keep  # only the newest ``keep`` events are replayable
        self.frames: list[bytes] = []
        self.seqs: list[int] = []
        self.repos: dict[str, FakeRepo] = {}
        self.next_seq = 1
        self._time_us = 1_780_000_000_000_000

    # -- events -------------------------------------------------------------------------
    def repo(self, did: str) -> FakeRepo:
        if did not in self.repos:
            self.repos[did] = FakeRepo(did)
        return self.repos[did]

    def tick(self) -> int:
        self._time_us += 1000
        return self._time_us

    def publish_frame(self, frame: bytes, seq: int | None = None) -> int:
        """Append a raw frame; ``seq`` (default: the next one) must increase."""
        seq = self.next_seq if seq is None else seq
        if self.seqs and seq <= self.seqs[-1]:
            raise ValueError("seq must increase")
        self.frames.append(frame)
        self.seqs.append(seq)
        self.next_seq = seq + 1
        self._notify()
        return seq

    def skip(self, n: int) -> None:
        """Leave a hole of ``n`` sequence numbers (as relays may)."""
        self.next_seq += n

    def write(
        self, did: str, *writes: Write, too_big: bool = False, commit: Commit | None = None
    ) -> tuple[int, Commit]:
        commit = commit or self.repo(did).commit(list(writes))
        seq = self.next_seq
        self.publish_frame(
            encode_frame("#commit", commit_body(commit, seq, self.tick(), too_big=too_big))
        )
        return seq, commit

    def create(self, did: str, collection: str, rkey: str, record: dict[str, Any]) -> int:
        return self.write(did, Write("create", collection, rkey, record))[0]

    def update(self, did: str, collection: str, rkey: str, record: dict[str, Any]) -> int:
        return self.write(did, Write("update", collection, rkey, record))[0]

    def delete(self, did: str, collection: str, rkey: str) -> int:
        return self.write(did, Write("delete", collection, rkey))[0]

    def identity_event(self, did: str, handle: str | None) -> int:
        body: dict[str, Any] = {"seq": self.next_seq, "did": did, "time": iso(self.tick())}
        if handle is not None:
            body["handle"] = handle
        return self.publish_frame(encode_frame("#identity", body))

    def account_event(self, did: str, *, active: bool, status: str | None = None) -> int:
        body: dict[str, Any] = {
            "seq": self.next_seq,
            "did": did,
            "time": iso(self.tick()),
            "active": active,
        }
        if status is not None:
            body["status"] = status
        return self.publish_frame(encode_frame("#account", body))

    def sync_event(self, did: str) -> int:
        repo = self.repo(did)
        latest = repo.commit([])
        body = {
            "seq": self.next_seq,
            "did": did,
            "blocks": latest.car(),
            "rev": latest.rev,
            "time": iso(self.tick()),
        }
        return self.publish_frame(encode_frame("#sync", body))

    def info(self, name: str, message: str = "") -> None:
        """An #info frame (no seq of its own: it stays in the stream after the last event)."""
        self.frames.append(encode_frame("#info", {"name": name, "message": message}))
        self.seqs.append(self.seqs[-1] if self.seqs else 0)
        self._notify()

    # -- cursor rules -------------------------------------------------------------------
    def _kept_from(self) -> int:
        return 0 if self.keep is None else max(0, len(self.frames) - self.keep)

    def _start_position(self, cursor: int | None) -> int:
        if cursor is None:
            return len(self.frames)
        return max(self._kept_from(), bisect.bisect_right(self.seqs, cursor))

    async def _pump(self, conn: _Conn, request: SubscribeRequest, position: int) -> None:
        cursor = request.cursor
        last = self.seqs[-1] if self.seqs else 0
        if cursor is not None and cursor > last:
            await conn.send(BytesMessage(data=error_frame("FutureCursor", "cursor in the future")))
            await conn.send(CloseConnection(code=1000, reason="FutureCursor"))
            return
        kept = self._kept_from()
        if cursor is not None and kept > 0 and position == kept and cursor < self.seqs[kept] - 1:
            frame = encode_frame("#info", {"name": "OutdatedCursor", "message": "too old"})
            if not await conn.send(BytesMessage(data=frame)):
                return
        while True:
            changed = self._changed
            if not conn.silent and position < len(self.frames):
                frame = self.frames[position]
                position += 1
                if not await conn.send(BytesMessage(data=frame)):
                    return
                conn.sent += 1
                continue
            await changed.wait()

    # -- the PDS's sync reads ----------------------------------------------------------
    def fetcher(self) -> FakeFetcher:
        return FakeFetcher(self)


@dataclass
class FakeFetcher:
    """The sink's RepoFetcher answered from the fake's repositories (what a PDS serves)."""

    fake: FakeFirehose
    fail: bool = False
    calls: int = 0

    async def get_record(self, did: str, collection: str, rkey: str) -> bytes:
        from coves.ingest.firehose_sink import FetchFailed

        self.calls += 1
        await trio.sleep(0)
        if self.fail or did not in self.fake.repos:
            raise FetchFailed("404")
        return self.fake.repos[did].record_car(f"{collection}/{rkey}")

    async def get_repo(self, did: str) -> bytes:
        from coves.ingest.firehose_sink import FetchFailed

        self.calls += 1
        await trio.sleep(0)
        if self.fail or did not in self.fake.repos:
            raise FetchFailed("404")
        return self.fake.repos[did].repo_car()


@dataclass
class FakeKeys:
    """The sink's KeyResolver from the fake's repositories (a DID document's #atproto key)."""

    fake: FakeFirehose
    lookups: int = 0

    async def signing_key(self, did: str, *, refresh: bool = False) -> Any:
        self.lookups += 1
        await trio.sleep(0)
        repo = self.fake.repos.get(did)
        return None if repo is None else repo.key.public()
