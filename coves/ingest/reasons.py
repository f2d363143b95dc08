"""What each dead-letter and skip reason means, in words an operator reads.

``coves replay`` and ``coves dead-letters`` print these next to the reason
codes, so the summary says why events were refused without a trip to the
source.
"""

from __future__ import annotations

from typing import Final

from coves.ingest.events import Reason, Skip

DEAD_LETTER_REASONS: Final[dict[str, str]] = {
    Reason.BAD_JSON: "the frame is not JSON",
    Reason.BAD_ENVELOPE: "not a stream event: fields missing or of the wrong type",
    Reason.INVALID_REV: "the rev is not a TID, or is far in the future",
    Reason.INVALID_RECORD: "the record fails its lexicon or Coves' field checks",
    Reason.SECURITY: "the record claims something its repository may not",
    Reason.IMMUTABLE_THREADING: "a comment update tried to move its reply references",
    Reason.APPLY_FAILED: "the database refused the event's data",
}

SKIP_REASONS: Final[dict[str, str]] = {
    Skip.UNKNOWN_KIND: "an event kind Coves does not index",
    Skip.UNINDEXED_COLLECTION: "a collection Coves does not index",
    Skip.STALE: "not newer than what is stored (a replay or a duplicate)",
    Skip.SUPERSEDED: "a newer event for the same record came in the same batch",
}


def describe(reason: str) -> str:
    """The meaning of a reason code; unknown codes (newer producers) are named as such."""
    return DEAD_LETTER_REASONS.get(reason) or SKIP_REASONS.get(reason) or "(no description)"


def is_dead_letter(reason: str) -> bool:
    return reason in DEAD_LETTER_REASONS
