"""Per-collection record checks and the rows they become.

The lexicon validator (when configured) checks a record's shape first; the
functions here still check every field they use, because a record that the
indexer cannot store must be dead-lettered rather than crash a batch, and
they apply the checks a lexicon cannot express: which repo may hold which
record (security) and how references must be shaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from coves.atproto.syntax import is_valid_did, parse_datetime, parse_record_uri
from coves.ingest import events as ev
from coves.ingest.events import Reason
from coves.search import trigrams

MAX_CONTENT_BYTES = 100_000  # far above any lexicon limit; a bound on what we store


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _invalid(detail: str) -> Rejected:
    return Rejected(Reason.INVALID_RECORD, detail)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _str(record: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise _invalid(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name}: must be a string")
    if len(value.encode()) > MAX_CONTENT_BYTES:
        raise _invalid(f"{name}: too long")
    return value


def _did(record: dict[str, Any], name: str) -> str:
    value = _str(record, name, required=True)
    assert value is not None
    if not is_valid_did(value):
        raise _invalid(f"{name}: must be a DID")
    return value


def _datetime(value: str) -> datetime | None:
    try:
        return parse_datetime(value)
    except (OverflowError, ValueError):  # e.g. year 9999 with a negative offset
        return None


def _created_at(record: dict[str, Any]) -> datetime:
    value = record.get("createdAt")
    if not isinstance(value, str):
        raise _invalid("createdAt: required datetime")
    parsed = _datetime(value)
    if parsed is None:
        raise _invalid("createdAt: not an RFC 3339 datetime")
    return parsed


def _optional_datetime(record: dict[str, Any], name: str) -> datetime | None:
    value = record.get(name)
    if value is None:
        return None
    parsed = _datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise _invalid(f"{name}: not an RFC 3339 datetime")
    return parsed


def _obj(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if value is not None and not isinstance(value, dict):
        raise _invalid(f"{name}: must be an object")
    return value


def _str_list(record: dict[str, Any], name: str) -> list[str]:
    value = record.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{name}: must be a list of strings")
    return value


def _strong_ref(record: dict[str, Any], name: str) -> tuple[str, str, str]:
    """(uri, cid, collection) of a strong ref naming a record by DID."""
    ref = record.get(name)
    if not isinstance(ref, dict):
        raise _invalid(f"{name}: strong ref required")
    uri, cid = ref.get("uri"), ref.get("cid")
    if not isinstance(uri, str) or not isinstance(cid, str) or not cid:
        raise _invalid(f"{name}: uri and cid required")
    try:
        parsed = parse_record_uri(uri)
    except ValueError as exc:
        raise _invalid(f"{name}.uri: {exc}") from None
    assert parsed.collection is not None
    return uri, cid, parsed.collection


@dataclass(slots=True)
class PostRow:
    author: str
    title: str | None
    content: str | None
    facets: str | None
    embed: str | None
    labels: str | None
    langs: list[str]
    record: str
    created_at: datetime


@dataclass(slots=True)
class CommentRow:
    root_uri: str
    root_cid: str
    parent_uri: str
    parent_cid: str
    content: str | None
    facets: str | None
    embed: str | None
    labels: str | None
    langs: list[str]
    record: str
    created_at: datetime


@dataclass(slots=True)
class VoteRow:
    subject_uri: str
    subject_cid: str
    direction: int
    created_at: datetime


@dataclass(slots=True)
class SubjectRow:
    """A subscription or block: a user's record naming a community."""

    community: str
    content_visibility: int
    created_at: datetime


@dataclass(slots=True)
class CommunityRow:
    name: str
    display_name: str | None
    description: str | None
    description_facets: str | None
    avatar: str | None
    banner: str | None
    created_by: str
    hosted_by: str
    visibility: str
    allow_external_discovery: bool
    moderation_type: str | None
    content_warnings: list[str]
    rules: str | None
    categories: list[str]
    language: str | None
    search_trigrams: list[str]
    record: str
    created_at: datetime


@dataclass(slots=True)
class AggregatorRow:
    display_name: str
    description: str | None
    avatar: str | None
    config_schema: str | None
    source_url: str | None
    maintainer: str | None
    record: str
    created_at: datetime


@dataclass(slots=True)
class AuthorizationRow:
    aggregator: str
    enabled: bool
    config: str | None
    created_by: str
    disabled_at: datetime | None
    disabled_by: str | None
    created_at: datetime


@dataclass(slots=True)
class ActorProfileRow:
    display_name: str | None
    description: str | None
    avatar: str | None
    banner: str | None
    created_at: datetime | None


@dataclass(slots=True)
class UserBlockRow:
    """A user's block of another user (``social.coves.actor.block``)."""

    subject: str
    created_at: datetime | None  # optional in the lexicon; the event time stands in


def _require_self(rkey: str) -> None:
    if rkey != "self":
        raise Rejected(Reason.SECURITY, "record key must be 'self'")


def parse_post(did: str, rkey: str, record: dict[str, Any]) -> PostRow:
    community = _did(record, "community")
    if community != did:
        raise Rejected(Reason.SECURITY, "post community must be the repo that holds it")
    labels = _obj(record, "labels")
    return PostRow(
        author=_did(record, "author"),
        title=_str(record, "title"),
        content=_str(record, "content"),
        facets=_json(record.get("facets")),
        embed=_json(_obj(record, "embed")),
        labels=_json(labels),
        langs=_str_list(record, "langs"),
        record=orjson.dumps(record).decode(),
        created_at=_created_at(record),
    )


def parse_comment(did: str, rkey: str, record: dict[str, Any]) -> CommentRow:
    reply = record.get("reply")
    if not isinstance(reply, dict):
        raise _invalid("reply: required")
    root_uri, root_cid, root_collection = _strong_ref(reply, "root")
    parent_uri, parent_cid, parent_collection = _strong_ref(reply, "parent")
    if root_collection != ev.POST:
        raise _invalid("reply.root: must be a post")
    if parent_collection not in (ev.POST, ev.COMMENT):
        raise _invalid("reply.parent: must be a post or a comment")
    if parent_collection == ev.POST and parent_uri != root_uri:
        raise _invalid("reply.parent: a post parent must be the root")
    return CommentRow(
        root_uri=root_uri,
        root_cid=root_cid,
        parent_uri=parent_uri,
        parent_cid=parent_cid,
        content=_str(record, "content"),
        facets=_json(record.get("facets")),
        embed=_json(_obj(record, "embed")),
        labels=_json(_obj(record, "labels")),
        langs=_str_list(record, "langs"),
        record=orjson.dumps(record).decode(),
        created_at=_created_at(record),
    )


def parse_vote(did: str, rkey: str, record: dict[str, Any]) -> VoteRow:
    uri, cid, collection = _strong_ref(record, "subject")
    if collection not in (ev.POST, ev.COMMENT):
        raise _invalid("subject: must be a post or a comment")
    direction = record.get("direction")
    if direction not in ("up", "down"):
        raise _invalid("direction: must be 'up' or 'down'")
    return VoteRow(uri, cid, 1 if direction == "up" else -1, _created_at(record))


def _clamp_visibility(value: Any) -> int:
    """contentVisibility 1..5, default 3; out-of-range numbers clamp (documented)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 3
    return int(min(5, max(1, value)))


def parse_subscription(did: str, rkey: str, record: dict[str, Any]) -> SubjectRow:
    return SubjectRow(
        _did(record, "subject"),
        _clamp_visibility(record.get("contentVisibility")),
        _created_at(record),
    )


def parse_block(did: str, rkey: str, record: dict[str, Any]) -> SubjectRow:
    return SubjectRow(_did(record, "subject"), 3, _created_at(record))


VISIBILITIES = frozenset({"public", "unlisted", "private"})


def parse_community(did: str, rkey: str, record: dict[str, Any]) -> CommunityRow:
    _require_self(rkey)
    name = _str(record, "name", required=True)
    assert name is not None
    display_name = _str(record, "displayName")
    description = _str(record, "description")
    visibility = record.get("visibility", "public")
    if not isinstance(visibility, str) or visibility not in VISIBILITIES:
        raise _invalid("visibility: must be public, unlisted or private")
    federation = _obj(record, "federation") or {}
    discovery = federation.get("allowExternalDiscovery", record.get("allowExternalDiscovery", True))
    if not isinstance(discovery, bool):
        raise _invalid("federation.allowExternalDiscovery: must be a boolean")
    rules = record.get("rules")
    if rules is not None and not isinstance(rules, list):
        raise _invalid("rules: must be a list")
    text = " ".join(part for part in (name, display_name, description) if part)
    return CommunityRow(
        name=name,
        display_name=display_name,
        description=description,
        description_facets=_json(record.get("descriptionFacets")),
        avatar=_json(_obj(record, "avatar")),
        banner=_json(_obj(record, "banner")),
        created_by=_did(record, "createdBy"),
        hosted_by=_did(record, "hostedBy"),
        visibility=visibility,
        allow_external_discovery=discovery,
        moderation_type=_str(record, "moderationType"),
        content_warnings=_str_list(record, "contentWarnings"),
        rules=_json(rules),
        categories=_str_list(record, "categories"),
        language=_str(record, "language"),
        search_trigrams=trigrams(text),
        record=orjson.dumps(record).decode(),
        created_at=_created_at(record),
    )


def parse_aggregator(did: str, rkey: str, record: dict[str, Any]) -> AggregatorRow:
    _require_self(rkey)
    if "did" in record and record.get("did") != did:
        raise Rejected(Reason.SECURITY, "aggregator did must be the repo that holds it")
    display_name = _str(record, "displayName", required=True)
    assert display_name is not None
    maintainer = _str(record, "maintainer")
    if maintainer is not None and not is_valid_did(maintainer):
        raise _invalid("maintainer: must be a DID")
    return AggregatorRow(
        display_name=display_name,
        description=_str(record, "description"),
        avatar=_json(_obj(record, "avatar")),
        config_schema=_json(_obj(record, "configSchema")),
        source_url=_str(record, "sourceUrl"),
        maintainer=maintainer,
        record=orjson.dumps(record).decode(),
        created_at=_created_at(record),
    )


def parse_authorization(did: str, rkey: str, record: dict[str, Any]) -> AuthorizationRow:
    if _did(record, "communityDid") != did:
        raise Rejected(Reason.SECURITY, "authorization communityDid must be the repo that holds it")
    enabled = record.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _invalid("enabled: must be a boolean")
    disabled_by = _str(record, "disabledBy")
    if disabled_by is not None and not is_valid_did(disabled_by):
        raise _invalid("disabledBy: must be a DID")
    return AuthorizationRow(
        aggregator=_did(record, "aggregatorDid"),
        enabled=enabled,
        config=_json(_obj(record, "config")),
        created_by=_did(record, "createdBy"),
        disabled_at=_optional_datetime(record, "disabledAt"),
        disabled_by=disabled_by,
        created_at=_created_at(record),
    )


def parse_actor_profile(did: str, rkey: str, record: dict[str, Any]) -> ActorProfileRow:
    _require_self(rkey)
    return ActorProfileRow(
        display_name=_str(record, "displayName"),
        description=_str(record, "description"),
        avatar=_json(_obj(record, "avatar")),
        banner=_json(_obj(record, "banner")),
        created_at=_optional_datetime(record, "createdAt"),
    )


def parse_actor_block(did: str, rkey: str, record: dict[str, Any]) -> UserBlockRow:
    subject = _did(record, "subject")
    if subject == did:
        raise _invalid("subject: an account cannot block itself")
    return UserBlockRow(subject, _optional_datetime(record, "createdAt"))


PARSERS: dict[str, Callable[[str, str, dict[str, Any]], Any]] = {
    ev.POST: parse_post,
    ev.COMMENT: parse_comment,
    ev.VOTE: parse_vote,
    ev.SUBSCRIPTION: parse_subscription,
    ev.BLOCK: parse_block,
    ev.PROFILE: parse_community,
    ev.AGGREGATOR: parse_aggregator,
    ev.AUTHORIZATION: parse_authorization,
    ev.ACTOR_PROFILE: parse_actor_profile,
    ev.ACTOR_BLOCK: parse_actor_block,
}

# Collections whose deletes must also respect the rkey rule (a delete of a
# non-self profile names nothing we could have stored).
SELF_KEYED = frozenset({ev.PROFILE, ev.AGGREGATOR, ev.ACTOR_PROFILE})
