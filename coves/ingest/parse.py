"""From one raw Jetstream frame to one classified event.

Everything here is pure Python over the decoded JSON: no database, no I/O,
so the whole batch is classified before the single transaction that applies
it. Nothing raises: a frame we cannot use becomes a :class:`DeadLetter`.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from coves.atproto.syntax import (
    INVALID_HANDLE,
    is_valid_cid,
    is_valid_did,
    is_valid_handle,
    is_valid_rkey,
    is_valid_tid,
)
from coves.ingest.events import (
    INDEXED_COLLECTIONS,
    SUBSCRIPTION,
    AccountEvent,
    Commit,
    DeadLetter,
    Event,
    IdentityEvent,
    Ignored,
    Reason,
    Skip,
)
from coves.ingest.records import PARSERS, SELF_KEYED, Rejected
from coves.logs import get_logger

log = get_logger(__name__)

# A rev more than this far ahead of our clock would block every later update
# to the record (revs must increase), so it is refused (spec `sync`).
MAX_REV_DRIFT_US = 5 * 60 * 1_000_000
MAX_RAW_CHARS = 256 * 1024  # dead letters keep at most this much of a frame
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_VALUE = {c: i for i, c in enumerate(_TID_ALPHABET)}
OPERATIONS = frozenset({"create", "update", "delete"})
ACCOUNT_STATUSES = frozenset(
    {"takendown", "suspended", "deleted", "deactivated", "desynchronized", "throttled"}
)


class RecordValidator(Protocol):
    """What the indexer needs from ``coves.lexicon.LexiconRegistry``.

    ``validate_record`` raises (``LexiconValidationError(path, message)``)
    when ``value`` does not match the record lexicon ``nsid``.
    """

    def validate_record(self, nsid: str, value: Any) -> None: ...


def tid_time_us(tid: str) -> int:
    """Microseconds since the epoch encoded in a TID (its top 53 bits)."""
    value = 0
    for char in tid:
        value = (value << 5) | _TID_VALUE[char]
    return value >> 10


def _clamp_subscription(record: dict[str, Any]) -> dict[str, Any]:
    """Clamp an out-of-range integer contentVisibility into 1..5 before validation.

    The original implementation clamped, and records written by it and by
    old clients exist; refusing them would silently drop subscriptions.
    """
    value = record.get("contentVisibility")
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 5:
        return {**record, "contentVisibility": min(5, max(1, value))}
    return record


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data[:MAX_RAW_CHARS]
    return data[:MAX_RAW_CHARS].decode("utf-8", errors="replace")


class FrameParser:
    def __init__(self, validator: RecordValidator | None) -> None:
        self._validator = validator

    def parse(self, data: str | bytes, *, now_us: int) -> Event:
        """``now_us``: wall clock (µs) for the future-rev check, read once per batch."""
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return DeadLetter(Reason.BAD_JSON, str(exc)[:200], _text(data))
        if not isinstance(message, dict):
            return DeadLetter(Reason.BAD_ENVELOPE, "event must be an object", _text(data))
        return self.parse_message(message, data, now_us=now_us)

    def parse_message(self, message: dict[str, Any], data: str | bytes, *, now_us: int) -> Event:
        """Classify an event already decoded into Jetstream's shape; ``data`` is its
        JSON text (kept by dead letters), e.g. a firehose commit's op rendered as JSON."""
        raw = data if isinstance(data, str) else None
        did = message.get("did")
        time_us = message.get("time_us")
        kind = message.get("kind")
        if not isinstance(did, str) or not is_valid_did(did):
            return self._dead(Reason.BAD_ENVELOPE, "did: missing or not a DID", data, message)
        if isinstance(time_us, bool) or not isinstance(time_us, int) or not 0 < time_us < 2**53:
            return self._dead(
                Reason.BAD_ENVELOPE, "time_us: missing or not a positive integer", data, message
            )
        maybe_nul = ("\\u0000" in data) if isinstance(data, str) else (b"\\u0000" in data)
        if maybe_nul and _has_nul(message):
            # PostgreSQL text and jsonb cannot hold NUL; storing it would fail the batch.
            return self._dead(Reason.INVALID_RECORD, "contains a NUL character", data, message)
        if kind == "commit":
            return self._commit(did, time_us, message, data, raw, now_us=now_us)
        if kind == "identity":
            return self._identity(did, time_us, message, data, raw)
        if kind == "account":
            return self._account(did, time_us, message, data, raw)
        if isinstance(kind, str):
            return Ignored(Skip.UNKNOWN_KIND, kind[:32], "", time_us)
        return self._dead(Reason.BAD_ENVELOPE, "kind: missing", data, message)

    def _dead(
        self,
        reason: str,
        detail: str,
        data: str | bytes,
        message: dict[str, Any],
        kind: str | None = None,
    ) -> DeadLetter:
        commit = message.get("commit")
        commit = commit if isinstance(commit, dict) else {}
        did, time_us = message.get("did"), message.get("time_us")
        collection, rkey = commit.get("collection"), commit.get("rkey")
        return DeadLetter(
            reason,
            detail,
            _text(data),
            kind=kind
            or (message["kind"] if isinstance(message.get("kind"), str) else "unknown")[:32],
            did=did[:2048] if isinstance(did, str) else None,
            collection=collection[:317] if isinstance(collection, str) else None,
            rkey=rkey[:512] if isinstance(rkey, str) else None,
            time_us=time_us if isinstance(time_us, int) and not isinstance(time_us, bool) else None,
        )

    def _commit(
        self,
        did: str,
        time_us: int,
        message: dict[str, Any],
        data: str | bytes,
        raw: str | None,
        *,
        now_us: int,
    ) -> Event:
        commit = message.get("commit")
        if not isinstance(commit, dict):
            return self._dead(Reason.BAD_ENVELOPE, "commit: missing", data, message)
        collection = commit.get("collection")
        if not isinstance(collection, str):
            return self._dead(Reason.BAD_ENVELOPE, "commit.collection: missing", data, message)
        if collection not in INDEXED_COLLECTIONS:
            return Ignored(Skip.UNINDEXED_COLLECTION, "commit", collection[:317], time_us)
        op, rkey, rev = commit.get("operation"), commit.get("rkey"), commit.get("rev")
        if not isinstance(op, str) or op not in OPERATIONS:
            return self._dead(Reason.BAD_ENVELOPE, "commit.operation: unknown", data, message)
        if not isinstance(rkey, str) or not is_valid_rkey(rkey):
            return self._dead(Reason.BAD_ENVELOPE, "commit.rkey: missing or invalid", data, message)
        if not isinstance(rev, str) or not is_valid_tid(rev):
            return self._dead(Reason.INVALID_REV, "commit.rev: not a TID", data, message)
        if tid_time_us(rev) > now_us + MAX_REV_DRIFT_US:
            return self._dead(Reason.INVALID_REV, "commit.rev: in the future", data, message)
        text = raw if raw is not None else _text(data)
        if op == "delete":
            if collection in SELF_KEYED and rkey != "self":
                return self._dead(Reason.SECURITY, "record key must be 'self'", data, message)
            return Commit(did, collection, rkey, rev, op, None, time_us, text)
        cid, record = commit.get("cid"), commit.get("record")
        if not isinstance(cid, str) or not is_valid_cid(cid):
            return self._dead(Reason.BAD_ENVELOPE, "commit.cid: missing or invalid", data, message)
        if not isinstance(record, dict):
            return self._dead(Reason.BAD_ENVELOPE, "commit.record: missing", data, message)
        record_type = record.get("$type")
        if record_type is not None and record_type != collection:
            return self._dead(
                Reason.INVALID_RECORD, "$type does not match the collection", data, message
            )
        if collection == SUBSCRIPTION:
            record = _clamp_subscription(record)
        if self._validator is not None:
            try:
                self._validator.validate_record(collection, record)
            except Exception as exc:  # the validator's error, or its bug: never fail the batch
                return self._dead(Reason.INVALID_RECORD, f"lexicon: {exc}"[:500], data, message)
        try:
            row = PARSERS[collection](did, rkey, record)
        except Rejected as exc:
            return self._dead(exc.reason, exc.detail[:500], data, message)
        except Exception as exc:  # a parser bug must not stall ingestion: keep the event
            log.warning("record parser failed", collection=collection, exc_info=exc)
            return self._dead(Reason.INVALID_RECORD, f"unparseable: {exc}"[:500], data, message)
        return Commit(did, collection, rkey, rev, op, cid, time_us, text, row)

    def _identity(
        self, did: str, time_us: int, message: dict[str, Any], data: str | bytes, raw: str | None
    ) -> Event:
        identity = message.get("identity")
        if not isinstance(identity, dict):
            return self._dead(Reason.BAD_ENVELOPE, "identity: missing", data, message)
        if identity.get("did", did) != did:
            return self._dead(
                Reason.SECURITY, "identity.did differs from the event did", data, message
            )
        handle = identity.get("handle")
        if handle is not None:
            if not isinstance(handle, str) or not is_valid_handle(handle):
                return self._dead(
                    Reason.BAD_ENVELOPE, "identity.handle: not a handle", data, message
                )
            handle = handle.lower()
            if handle == INVALID_HANDLE:
                handle = None
        return IdentityEvent(did, handle, time_us, raw if raw is not None else _text(data))

    def _account(
        self, did: str, time_us: int, message: dict[str, Any], data: str | bytes, raw: str | None
    ) -> Event:
        account = message.get("account")
        if not isinstance(account, dict):
            return self._dead(Reason.BAD_ENVELOPE, "account: missing", data, message)
        if account.get("did", did) != did:
            return self._dead(
                Reason.SECURITY, "account.did differs from the event did", data, message
            )
        active = account.get("active")
        if not isinstance(active, bool):
            return self._dead(
                Reason.BAD_ENVELOPE, "account.active: must be a boolean", data, message
            )
        status = account.get("status")
        if status is not None and not isinstance(status, str):
            return self._dead(
                Reason.BAD_ENVELOPE, "account.status: must be a string", data, message
            )
        if active:
            status = None
        elif status is None:
            status = "deactivated"
        elif status not in ACCOUNT_STATUSES:
            status = status[:32]
        return AccountEvent(did, active, status, time_us, raw if raw is not None else _text(data))
