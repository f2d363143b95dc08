"""Parsed stream events and the reasons we refuse them.

A frame becomes exactly one of: a :class:`Commit`, an :class:`IdentityEvent`,
an :class:`AccountEvent`, an :class:`Ignored` (a kind or collection we do not
index: counted, not kept) or a :class:`DeadLetter` (malformed or rejected:
counted and kept with its raw text for inspection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

PROFILE: Final = "social.coves.community.profile"
SUBSCRIPTION: Final = "social.coves.community.subscription"
BLOCK: Final = "social.coves.community.block"
POST: Final = "social.coves.community.post"
COMMENT: Final = "social.coves.community.comment"
VOTE: Final = "social.coves.feed.vote"
AGGREGATOR: Final = "social.coves.aggregator.service"
AUTHORIZATION: Final = "social.coves.aggregator.authorization"
ACTOR_PROFILE: Final = "social.coves.actor.profile"
ACTOR_BLOCK: Final = "social.coves.actor.block"

INDEXED_COLLECTIONS: Final = frozenset(
    {
        PROFILE,
        SUBSCRIPTION,
        BLOCK,
        POST,
        COMMENT,
        VOTE,
        AGGREGATOR,
        AUTHORIZATION,
        ACTOR_PROFILE,
        ACTOR_BLOCK,
    }
)


class Reason:
    """Dead-letter reasons (the ``reason`` label and ``dead_letters.reason``)."""

    BAD_JSON: Final = "bad_json"  # the frame is not JSON
    BAD_ENVELOPE: Final = "bad_envelope"  # not a Jetstream event: missing/mistyped fields
    INVALID_REV: Final = "invalid_rev"  # rev is not a TID, or is far in the future
    INVALID_RECORD: Final = "invalid_record"  # fails the lexicon or our field checks
    SECURITY: Final = "security"  # record claims something its repo may not
    IMMUTABLE_THREADING: Final = "immutable_threading"  # comment update moved its reply refs
    APPLY_FAILED: Final = "apply_failed"  # the database refused this event's data


class Skip:
    """Reasons an event is counted but neither applied nor dead-lettered."""

    UNKNOWN_KIND: Final = "unknown_kind"
    UNINDEXED_COLLECTION: Final = "unindexed_collection"
    STALE: Final = "stale"  # rev not newer than the stored one (replay, duplicate)
    SUPERSEDED: Final = "superseded"  # a newer event for the same record is in the batch


@dataclass(slots=True)
class Commit:
    did: str
    collection: str
    rkey: str
    rev: str
    op: str  # create | update | delete
    cid: str | None
    time_us: int
    raw: str
    row: Any = None  # the collection's parsed row (records.py); None for deletes
    # Computed once, when parsed (off the database's critical path): a batch's
    # decisions look them up over a million times per 200 000 events.
    key: tuple[str, str, str] = field(init=False)
    uri: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.did, self.collection, self.rkey)
        self.uri = f"at://{self.did}/{self.collection}/{self.rkey}"


@dataclass(slots=True)
class IdentityEvent:
    did: str
    handle: str | None  # lowercased; None when absent or handle.invalid
    time_us: int
    raw: str


@dataclass(slots=True)
class AccountEvent:
    did: str
    active: bool
    status: str | None
    time_us: int
    raw: str


@dataclass(slots=True)
class Ignored:
    reason: str
    kind: str
    collection: str
    time_us: int | None


@dataclass(slots=True)
class DeadLetter:
    reason: str
    detail: str
    raw: str
    kind: str = "unknown"
    did: str | None = None
    collection: str | None = None
    rkey: str | None = None
    time_us: int | None = None


Event = Commit | IdentityEvent | AccountEvent | Ignored | DeadLetter
