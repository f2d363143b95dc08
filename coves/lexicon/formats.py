"""String formats named by lexicons, as syntax checks over ``coves.atproto.syntax``.

Each checker returns None when the value is acceptable and otherwise a short
reason, which becomes the validation message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache

from coves.atproto import syntax

FormatCheck = Callable[[str], str | None]

# RFC 3986 scheme followed by a non-empty, whitespace-free remainder.
URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:[^\s]+$")
MAX_URI_LENGTH = 8192
MAX_AT_URI_LENGTH = 8192


def _did(value: str) -> str | None:
    return None if syntax.is_valid_did(value) else "must be a DID"


def _handle(value: str) -> str | None:
    return None if syntax.is_valid_handle(value) else "must be a handle"


def _at_identifier(value: str) -> str | None:
    if syntax.is_valid_did(value) or syntax.is_valid_handle(value):
        return None
    return "must be a DID or handle"


# The shape nearly every AT-URI in a record has (a DID authority naming one
# record), matched in one step; anything else goes through AtUri.parse. The
# collection is checked separately, memoised: the NSID grammar is slow to
# match (its segment patterns backtrack) and records name few collections.
_RECORD_URI_RE = re.compile(
    r"^at://(did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-])/([a-zA-Z0-9.-]{1,317})/"
    r"([A-Za-z0-9.\-_:~]{1,512})$"
)
_collection_ok = lru_cache(1024)(syntax.is_valid_nsid)


def _at_uri(value: str) -> str | None:
    match = _RECORD_URI_RE.fullmatch(value)
    if (
        match is not None
        and len(value) <= MAX_AT_URI_LENGTH
        and len(match[1]) <= 2048
        and match[3] not in (".", "..")
        and _collection_ok(match[2])
    ):
        return None
    try:
        syntax.AtUri.parse(value)
    except ValueError as exc:
        return f"must be an AT-URI ({exc})"
    return None


def _nsid(value: str) -> str | None:
    return None if _collection_ok(value) else "must be an NSID"


def _cid(value: str) -> str | None:
    return None if syntax.is_valid_cid(value) else "must be a CID"


def _datetime(value: str) -> str | None:
    # Same acceptance as syntax.parse_datetime, without its normalising work on
    # the common path: the grammar check, then the stdlib parser for the
    # calendar check; parse_datetime only for forms the stdlib refuses.
    if syntax.DATETIME_RE.fullmatch(value) is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return None
        if syntax.parse_datetime(value) is not None:
            return None
    return "must be an RFC 3339 datetime with timezone"


def _uri(value: str) -> str | None:
    if len(value) > MAX_URI_LENGTH or URI_RE.fullmatch(value) is None:
        return "must be a URI"
    return None


def _language(value: str) -> str | None:
    return None if syntax.is_valid_language(value) else "must be a BCP 47 language tag"


def _tid(value: str) -> str | None:
    return None if syntax.is_valid_tid(value) else "must be a TID"


def _record_key(value: str) -> str | None:
    return None if syntax.is_valid_rkey(value) else "must be a record key"


# Identifiers repeat heavily in the stream (the same community DIDs, the same
# popular post URIs in votes and comments), so their checks are memoised.
_CACHE_SIZE = 8192

FORMATS: Mapping[str, FormatCheck] = {
    "did": lru_cache(_CACHE_SIZE)(_did),
    "handle": lru_cache(_CACHE_SIZE)(_handle),
    "at-identifier": lru_cache(_CACHE_SIZE)(_at_identifier),
    "at-uri": lru_cache(_CACHE_SIZE)(_at_uri),
    "nsid": _nsid,
    "cid": _cid,
    "datetime": _datetime,
    "uri": _uri,
    "language": _language,
    "tid": _tid,
    "record-key": _record_key,
}


def clear_caches() -> None:
    """Forget memoised identifier checks (benchmarks measure cold caches)."""
    for check in (*FORMATS.values(), _collection_ok):
        clear = getattr(check, "cache_clear", None)
        if clear is not None:
            clear()
