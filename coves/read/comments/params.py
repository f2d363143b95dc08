"""getComments parameters, validated so bad input is a 400 and never a 500.

Parameters arrive either decoded by the lexicon layer (ints already ints) or
raw from the query string (strings, or lists when repeated); both are
accepted and checked here, so the endpoint is safe with or without lexicons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from coves.atproto.syntax import AtUri, is_valid_did, is_valid_rkey
from coves.errors import invalid_request
from coves.read.feeds import TIMEFRAMES  # the same windows as the feeds

POST_COLLECTION = "social.coves.community.post"
SORTS = ("hot", "top", "new")
DEFAULT_DEPTH, MAX_DEPTH = 10, 100
DEFAULT_LIMIT, MAX_LIMIT = 50, 100
DEFAULT_REPLIES, MAX_REPLIES = 5, 50

Sort = Literal["hot", "top", "new"]


@dataclass(frozen=True)
class ThreadParams:
    post: str
    sort: Sort = "hot"
    timeframe: str | None = None  # only with sort=top
    depth: int = DEFAULT_DEPTH
    limit: int = DEFAULT_LIMIT
    replies_per_parent: int = DEFAULT_REPLIES
    cursor: str | None = None
    parent: str | None = None  # parentRkey: the subtree under that comment


def _single(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, list):
        if len(value) != 1:
            raise invalid_request(f"{name} must be given once")
        value = value[0]
    if value == "":
        return None
    return value


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = _single(params, name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise invalid_request(f"{name} must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > 12:
            raise invalid_request(f"{name} must be an integer")
        value = int(text)
    if not isinstance(value, int):
        raise invalid_request(f"{name} must be an integer")
    if not low <= value <= high:
        raise invalid_request(f"{name} must be between {low} and {high}")
    return value


def _text(params: Mapping[str, Any], name: str) -> str | None:
    value = _single(params, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{name} must be a string")
    return value


def parse_thread_params(params: Mapping[str, Any]) -> ThreadParams:
    post = _text(params, "post")
    if post is None:
        raise invalid_request("post parameter is required")
    try:
        uri = AtUri.parse(post)
    except ValueError as exc:
        raise invalid_request(f"post must be a post AT-URI: {exc}") from None
    if not uri.is_record:
        raise invalid_request("post must name a record (at://did/collection/rkey)")
    if uri.collection != POST_COLLECTION:
        raise invalid_request(f"post must be a {POST_COLLECTION} AT-URI")
    if not is_valid_did(uri.authority):
        # A handle authority is resolved to the DID form before use (see
        # coves.read.comments.thread); keep it lowercased so the lookup is exact.
        post = str(AtUri(uri.authority.lower(), uri.collection, uri.rkey))

    sort = _text(params, "sort") or "hot"
    if sort not in SORTS:
        raise invalid_request("sort must be one of hot, top, new")
    timeframe = _text(params, "timeframe")
    if timeframe is not None:
        if timeframe not in TIMEFRAMES:
            raise invalid_request("timeframe must be one of hour, day, week, month, year, all")
        if sort != "top":
            timeframe = None  # ignored by the other sorts (the mobile app sends it with hot)
    parent = _text(params, "parentRkey")
    if parent is not None and not is_valid_rkey(parent):
        raise invalid_request("parentRkey must be a record key")

    return ThreadParams(
        post=post,
        sort=cast(Sort, sort),
        timeframe=timeframe,
        depth=_int(params, "depth", DEFAULT_DEPTH, 0, MAX_DEPTH),
        limit=min(_int(params, "limit", DEFAULT_LIMIT, 1, 1 << 40), MAX_LIMIT),
        replies_per_parent=_int(params, "repliesPerParent", DEFAULT_REPLIES, 0, MAX_REPLIES),
        cursor=_text(params, "cursor"),
        parent=parent,
    )
