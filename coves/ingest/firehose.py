"""From ``com.atproto.sync.subscribeRepos`` frames to the events the indexer takes.

A frame is two DAG-CBOR values: a header ``{op: 1, t: "#commit"}`` (or
``{op: -1}`` for an error) and the body. A ``#commit`` carries the repo's
operations (``action``, ``path``, ``cid``) and a CAR of the blocks they need.
Each ``social.coves.*`` operation becomes one event in Jetstream's shape
(``{did, time_us, kind: "commit", commit: {rev, operation, collection, rkey,
cid, record}}``), the record rendered in the atproto JSON data model
(``{"$link"}``, ``{"$bytes"}``, blob refs with their ``ref`` link) by cbrrr's
atjson mode, so one parser and one set of rules serve both sources.

Operations on other collections are skipped before anything of the CAR is
read: a frame whose bytes do not even contain ``social.coves.`` only has its
body decoded (for ``seq``), and its blocks are never parsed.

Pure CPU, no I/O and no state: :class:`coves.ingest.firehose_sink.FirehoseSink`
runs it in a worker thread and does what needs the network (keys, fetches).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cbrrr
import orjson

from coves.atproto.car import (
    Car,
    CarError,
    cid_bytes,
    cid_text,
    decode_block,
    find_block,
    read_car,
)
from coves.ingest.events import DeadLetter, Reason

PREFIX = "social.coves."
_PREFIX_BYTES = PREFIX.encode()
MAX_RAW_BYTES = 64 * 1024  # dead letters keep at most this much of a binary frame
ACTIONS = frozenset({"create", "update", "delete"})
KNOWN_ERRORS = frozenset({"FutureCursor", "ConsumerTooSlow"})
# A #commit frame's header as DAG-CBOR encodes it (one canonical form).
_COMMIT: dict[str, Any] = {"t": "#commit", "op": 1}
_COMMIT_HEADER = cbrrr.encode_dag_cbor(_COMMIT)


@dataclass(slots=True)
class Op:
    """One repository operation we index: ``collection/rkey`` and the record CID."""

    action: str
    collection: str
    rkey: str
    cid: bytes | None  # None for deletes

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.rkey}"


@dataclass(slots=True)
class Decoded:
    """What one frame is, and the events it yields."""

    kind: str  # commit, identity, account, sync, info, error, unknown, malformed
    seq: int | None = None
    did: str | None = None
    rev: str | None = None
    time_us: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # #commit: what a signature check needs (kept only when it has indexed ops).
    car: Car | None = None
    commit: bytes | None = None
    ops: list[Op] = field(default_factory=list)
    too_big: bool = False  # the records must be fetched from the PDS
    # #info / error frames
    name: str | None = None
    message: str | None = None


def frame_text(data: bytes) -> str:
    """A binary frame as dead-letter text (bounded base64)."""
    return "cbor-base64:" + base64.b64encode(data[:MAX_RAW_BYTES]).decode()


def time_us(value: object) -> int | None:
    """Microseconds of an RFC 3339 ``time`` field, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return int(stamp.timestamp() * 1_000_000)


def _positive(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return None


def decode_frame(data: bytes, *, whole_car: bool = True) -> Decoded:
    """Classify one binary frame; never raises (bad frames become dead letters).

    ``whole_car=False`` (indexing without verification) takes just the record
    blocks out of a commit's CAR (:func:`coves.atproto.car.find_block`) and keeps
    no ``car``: nothing will check the commit's signature or proofs.
    """
    try:
        if data.startswith(_COMMIT_HEADER):  # nearly every frame: one value to decode
            header: object = _COMMIT
            body: object = cbrrr.decode_dag_cbor(data[len(_COMMIT_HEADER) :])
        else:
            values = cbrrr.decode_multi_dag_cbor_in_violation_of_the_spec(data)
            header = next(values)
            body = next(values)
            if next(values, None) is not None:
                return _malformed(data, "more than two DAG-CBOR values")
    except (cbrrr.CbrrrDecodeError, ValueError, StopIteration, AssertionError) as exc:
        return _malformed(data, f"not two DAG-CBOR values: {exc}"[:300])
    if not isinstance(header, dict) or not isinstance(body, dict):
        return _malformed(data, "header and body must be maps")
    op, kind = header.get("op"), header.get("t")
    if op == -1:
        error, message = body.get("error"), body.get("message")
        return Decoded(
            "error",
            name=error if isinstance(error, str) else None,
            message=message[:500] if isinstance(message, str) else None,
        )
    if op != 1 or not isinstance(kind, str):
        return _malformed(data, "header: op must be 1 with a type t")
    seq = _positive(body.get("seq"))
    if kind == "#info":
        name, message = body.get("name"), body.get("message")
        return Decoded(
            "info",
            name=name[:64] if isinstance(name, str) else None,
            message=message[:500] if isinstance(message, str) else None,
        )
    if seq is None:
        return _malformed(data, f"{kind}: seq missing or not a non-negative integer")
    did = body.get("repo") if kind == "#commit" else body.get("did")
    when = time_us(body.get("time"))
    if not isinstance(did, str) or when is None:
        return _malformed(data, f"{kind}: did/repo or time missing", seq=seq)
    if kind == "#commit":
        return _commit(data, body, seq, did, when, whole_car=whole_car)
    if kind == "#identity":
        identity: dict[str, Any] = {"did": did, "seq": seq, "time": body["time"]}
        if body.get("handle") is not None:
            identity["handle"] = body["handle"]
        event = {"did": did, "time_us": when, "kind": "identity", "identity": identity}
        return Decoded("identity", seq, did, time_us=when, messages=[event])
    if kind == "#account":
        account: dict[str, Any] = {
            "did": did,
            "seq": seq,
            "time": body["time"],
            "active": body.get("active"),
        }
        if body.get("status") is not None:
            account["status"] = body["status"]
        event = {"did": did, "time_us": when, "kind": "account", "account": account}
        return Decoded("account", seq, did, time_us=when, messages=[event])
    if kind == "#sync":
        rev = body.get("rev")
        if not isinstance(rev, str):
            return _malformed(data, "#sync: rev missing", seq=seq)
        return Decoded("sync", seq, did, rev, when)
    # #handle, #migrate, #tombstone (deprecated) and anything newer: nothing to index.
    return Decoded("unknown", seq, did, time_us=when, name=kind[:32])


def _commit(
    data: bytes, body: dict[str, Any], seq: int, did: str, when: int, *, whole_car: bool
) -> Decoded:
    rev = body.get("rev")
    if not isinstance(rev, str):
        return _malformed(data, "#commit: rev missing", seq=seq)
    out = Decoded("commit", seq, did, rev, when, too_big=body.get("tooBig") is True)
    if _PREFIX_BYTES not in data:
        return out  # no op of ours: skip without reading the CAR
    ops = body.get("ops")
    if not isinstance(ops, list):
        return _malformed(data, "#commit: ops missing", seq=seq)
    for raw_op in ops:
        if not isinstance(raw_op, dict):
            return _malformed(data, "#commit: malformed op", seq=seq)
        path = raw_op.get("path")
        if not isinstance(path, str) or not path.startswith(PREFIX):
            continue
        collection, _, rkey = path.partition("/")
        action = raw_op.get("action")
        link = raw_op.get("cid")
        if action not in ACTIONS or not rkey:
            return _malformed(data, f"#commit: bad op {path[:200]!r}", seq=seq)
        if action == "delete":
            out.ops.append(Op(action, collection, rkey, None))
        elif isinstance(link, cbrrr.CID):
            out.ops.append(Op(action, collection, rkey, link.cid_bytes))
        else:
            return _malformed(data, f"#commit: op {path[:200]!r} has no cid", seq=seq)
    if not out.ops:
        return out
    commit = body.get("commit")
    value = body.get("blocks")
    blocks = value if isinstance(value, bytes) else b""
    try:
        out.commit = cid_bytes(commit)
        if not blocks:
            if not out.too_big:
                raise CarError("blocks missing")
        elif whole_car or out.too_big:
            out.car = read_car(blocks)
    except CarError as exc:
        return _malformed(data, f"#commit: {exc}"[:300], seq=seq)
    if out.too_big:
        return out  # the records come from the PDS (FirehoseSink)
    for op in out.ops:
        record: object = None
        if op.cid is not None:
            try:
                if out.car is not None:
                    record = out.car.decode(op.cid, atjson=True)
                else:
                    record = _record(blocks, op.cid)
            except CarError as exc:
                out.dead.append(_op_dead(did, op, when, f"record block: {exc}", data))
                continue
            if record is None:
                out.dead.append(_op_dead(did, op, when, "record block missing from CAR", data))
                continue
        out.messages.append(commit_message(did, when, rev, op, record))
    return out


def _record(blocks: bytes, cid: bytes) -> object:
    block = find_block(blocks, cid)
    return None if block is None else decode_block(cid, block, atjson=True)


def commit_message(did: str, when: int, rev: str, op: Op, record: object) -> dict[str, Any]:
    """One operation as a Jetstream commit event."""
    commit: dict[str, Any] = {
        "rev": rev,
        "operation": op.action,
        "collection": op.collection,
        "rkey": op.rkey,
    }
    if op.cid is not None:
        commit["cid"] = cid_text(op.cid)
        commit["record"] = record
    return {"did": did, "time_us": when, "kind": "commit", "commit": commit}


def as_json(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _op_dead(did: str, op: Op, when: int, detail: str, data: bytes) -> DeadLetter:
    return DeadLetter(
        Reason.BAD_ENVELOPE,
        detail[:500],
        frame_text(data),
        kind="commit",
        did=did[:2048],
        collection=op.collection[:317],
        rkey=op.rkey[:512],
        time_us=when,
    )


def _malformed(data: bytes, detail: str, *, seq: int | None = None) -> Decoded:
    dead = DeadLetter(Reason.BAD_ENVELOPE, detail, frame_text(data), kind="firehose")
    return Decoded("malformed", seq, dead=[dead])
