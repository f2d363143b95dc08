"""Real atproto repositories for tests: MST, signed commits, CAR files, firehose frames.

Everything is built to the spec (DAG-CBOR via cbrrr, sha2-256 CIDv1, MST
layers from the leading zero bits of each key's SHA-256 counted in pairs,
low-S ECDSA commit signatures), so what the firehose sink decodes and
verifies here is what a real PDS sends. Each commit's CAR holds the commit,
the records the operations wrote and, for each operation, the tree nodes from
the root to its key (its proof), as a PDS sends; ``car(full=True)`` holds the
whole tree instead.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cbrrr

from coves.atproto import mst
from coves.atproto.car import Car, block_cid, write_car
from coves.atproto.keys import PrivateKey
from tests.support.events import tid


def layer(key: bytes) -> int:
    digest = hashlib.sha256(key).digest()
    zeros = 0
    for byte in digest:
        if byte == 0:
            zeros += 8
            continue
        zeros += 8 - byte.bit_length()
        break
    return zeros // 2


def build_mst(entries: list[tuple[bytes, bytes]], blocks: dict[bytes, bytes]) -> bytes:
    """The root CID of the tree holding ``entries`` (sorted (key, cid)); nodes go in ``blocks``."""
    if not entries:
        return _node(None, [], blocks)
    top = max(layer(key) for key, _ in entries)
    return _level(entries, top, blocks)


def _level(entries: list[tuple[bytes, bytes]], level: int, blocks: dict[bytes, bytes]) -> bytes:
    left: bytes | None = None
    items: list[list[Any]] = []  # [key, value, right subtree]
    group: list[tuple[bytes, bytes]] = []

    def flush() -> bytes | None:
        return _level(group, level - 1, blocks) if group else None

    for key, value in entries:
        if layer(key) == level:
            sub = flush()
            if items:
                items[-1][2] = sub
            else:
                left = sub
            items.append([key, value, None])
            group = []
        else:
            group.append((key, value))
    sub = flush()
    if items:
        items[-1][2] = sub
    else:
        left = sub
    return _node(left, items, blocks)


def _node(left: bytes | None, items: list[list[Any]], blocks: dict[bytes, bytes]) -> bytes:
    entries = []
    previous = b""
    for key, value, right in items:
        prefix = 0
        while prefix < min(len(key), len(previous)) and key[prefix] == previous[prefix]:
            prefix += 1
        entries.append(
            {
                "p": prefix,
                "k": key[prefix:],
                "v": cbrrr.CID(value),
                "t": None if right is None else cbrrr.CID(right),
            }
        )
        previous = key
    block = cbrrr.encode_dag_cbor({"l": None if left is None else cbrrr.CID(left), "e": entries})
    cid = block_cid(block)
    blocks[cid] = block
    return cid


def iso(time_us: int) -> str:
    stamp = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(time_us // 1000) % 1000:03d}Z"


def encode_frame(kind: str, body: dict[str, Any]) -> bytes:
    return cbrrr.encode_dag_cbor({"op": 1, "t": kind}) + cbrrr.encode_dag_cbor(body)


def error_frame(error: str, message: str = "") -> bytes:
    return cbrrr.encode_dag_cbor({"op": -1}) + cbrrr.encode_dag_cbor(
        {"error": error, "message": message}
    )


@dataclass
class Write:
    action: str  # create | update | delete
    collection: str
    rkey: str
    record: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.rkey}"


@dataclass
class Commit:
    """One signed commit: what a ``#commit`` frame (and getRepo) is built from."""

    did: str
    rev: str
    since: str | None
    cid: bytes
    root: bytes
    prev_data: bytes | None
    ops: list[dict[str, Any]]
    blocks: dict[bytes, bytes]  # commit, records, proofs
    tree: dict[bytes, bytes] = field(default_factory=dict)  # every node

    def car(self, *, full: bool = False) -> bytes:
        return write_car([self.cid], {**self.blocks, **self.tree} if full else self.blocks)


_clock = itertools.count(1)


@dataclass
class FakeRepo:
    did: str
    key: PrivateKey = field(default_factory=PrivateKey.generate)
    records: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # path -> (cid, block)
    rev: str | None = None
    root: bytes | None = None
    start_us: int = 1_780_000_000_000_000

    def next_rev(self) -> str:
        return tid(self.start_us + next(_clock) * 1000)

    def commit(self, writes: list[Write], *, sign_with: PrivateKey | None = None) -> Commit:
        blocks: dict[bytes, bytes] = {}
        ops = []
        for write in writes:
            if write.action == "delete":
                self.records.pop(write.path, None)
                ops.append({"action": "delete", "path": write.path, "cid": None})
                continue
            record = {"$type": write.collection, **(write.record or {})}
            block = cbrrr.encode_dag_cbor(_links(record))
            cid = block_cid(block)
            self.records[write.path] = (cid, block)
            blocks[cid] = block
            ops.append({"action": write.action, "path": write.path, "cid": cbrrr.CID(cid)})
        entries = sorted((path.encode(), cid) for path, (cid, _) in self.records.items())
        tree: dict[bytes, bytes] = {}
        root = build_mst(entries, tree)
        whole = Car([root], tree)
        for op in ops:
            for node in mst.path(whole, root, op["path"]):
                blocks[node] = tree[node]
        blocks.setdefault(root, tree[root])
        rev = self.next_rev()
        unsigned = {
            "did": self.did,
            "version": 3,
            "data": cbrrr.CID(root),
            "rev": rev,
            "prev": None,
        }
        sig = (sign_with or self.key).sign(cbrrr.encode_dag_cbor(unsigned))
        commit_block = cbrrr.encode_dag_cbor({**unsigned, "sig": sig})
        commit_cid = block_cid(commit_block)
        blocks = {commit_cid: commit_block, **blocks}
        out = Commit(self.did, rev, self.rev, commit_cid, root, self.root, ops, blocks, tree)
        self.rev, self.root = rev, root
        return out

    def repo_car(self) -> bytes:
        """The whole repository (``getRepo``): commit, every node, every record."""
        latest = self.commit([])
        blocks = {**latest.blocks, **latest.tree}
        for cid, block in self.records.values():
            blocks[cid] = block
        return write_car([latest.cid], blocks)

    def record_car(self, path: str) -> bytes:
        """``getRecord``: the commit, the record's proof, the record."""
        latest = self.commit([])
        blocks = dict(latest.blocks)
        for node in mst.path(Car([latest.root], latest.tree), latest.root, path):
            blocks[node] = latest.tree[node]
        if path in self.records:
            cid, block = self.records[path]
            blocks[cid] = block
        return write_car([latest.cid], blocks)


def _links(value: Any) -> Any:
    """atproto JSON → DAG-CBOR values: ``{"$link"}`` → CID, ``{"$bytes"}`` → bytes."""
    if isinstance(value, dict):
        if set(value) == {"$link"}:
            return cbrrr.CID.decode(value["$link"])
        if set(value) == {"$bytes"}:
            import base64

            text = value["$bytes"]
            return base64.b64decode(text + "=" * (-len(text) % 4))
        return {k: _links(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_links(v) for v in value]
    return value


def commit_body(commit: Commit, seq: int, time_us: int, *, too_big: bool = False) -> dict[str, Any]:
    return {
        "seq": seq,
        "rebase": False,
        "tooBig": too_big,
        "repo": commit.did,
        "commit": cbrrr.CID(commit.cid),
        "rev": commit.rev,
        "since": commit.since,
        "blocks": b"" if too_big else commit.car(),
        "ops": commit.ops,
        "blobs": [],
        "time": iso(time_us),
        "prevData": None if commit.prev_data is None else cbrrr.CID(commit.prev_data),
    }
