"""Builders for realistic Jetstream v1 events (the wire format the consumer hands us).

Revs are real TIDs derived from a clock so per-repo order is meaningful;
CIDs look like dag-cbor CIDv1s; records carry ``$type`` and ``createdAt``.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

import orjson

from coves.ingest.types import Frame

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"

POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
SUBSCRIPTION = "social.coves.community.subscription"
BLOCK = "social.coves.community.block"
PROFILE = "social.coves.community.profile"
AGGREGATOR = "social.coves.aggregator.service"
AUTHORIZATION = "social.coves.aggregator.authorization"
ACTOR_PROFILE = "social.coves.actor.profile"

CREATED_AT = "2026-01-02T03:04:05.000Z"


def tid(micros: int, clock_id: int = 0) -> str:
    value = (micros << 10) | (clock_id & 0x3FF)
    out = []
    for _ in range(13):
        out.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def cid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    bits = int.from_bytes(digest, "big")
    body = "".join(_B32[(bits >> (5 * i)) & 31] for i in range(52))
    return "bafyrei" + body


def did(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    bits = int.from_bytes(digest[:15], "big")
    return "did:plc:" + "".join(_B32[(bits >> (5 * i)) & 31] for i in range(24))


def uri(repo: str, collection: str, rkey: str) -> str:
    return f"at://{repo}/{collection}/{rkey}"


class Stream:
    """Hands out increasing time_us and revs, like one Jetstream connection."""

    def __init__(self, start_us: int | None = None) -> None:
        self._now = (
            start_us if start_us is not None else int(time.time() * 1_000_000) - 3_600_000_000
        )
        self._counter = itertools.count()

    def tick(self) -> int:
        self._now += 1_000 + next(self._counter) % 7
        return self._now

    def commit(
        self,
        repo: str,
        collection: str,
        rkey: str,
        record: dict[str, Any] | None = None,
        *,
        operation: str = "create",
        rev: str | None = None,
        time_us: int | None = None,
    ) -> dict[str, Any]:
        now = time_us if time_us is not None else self.tick()
        commit: dict[str, Any] = {
            "rev": rev if rev is not None else tid(now),
            "operation": operation,
            "collection": collection,
            "rkey": rkey,
        }
        if operation != "delete":
            body = {"$type": collection, **(record or {})}
            commit["record"] = body
            commit["cid"] = cid(orjson.dumps(body).decode() + rkey + str(now))
        return {"did": repo, "time_us": now, "kind": "commit", "commit": commit}

    def delete(self, repo: str, collection: str, rkey: str, **kw: Any) -> dict[str, Any]:
        return self.commit(repo, collection, rkey, operation="delete", **kw)

    def identity(
        self, repo: str, handle: str | None, *, time_us: int | None = None
    ) -> dict[str, Any]:
        now = time_us if time_us is not None else self.tick()
        body: dict[str, Any] = {"did": repo, "seq": now, "time": "2026-01-02T03:04:05.000Z"}
        if handle is not None:
            body["handle"] = handle
        return {"did": repo, "time_us": now, "kind": "identity", "identity": body}

    def account(
        self, repo: str, active: bool, status: str | None = None, *, time_us: int | None = None
    ) -> dict[str, Any]:
        now = time_us if time_us is not None else self.tick()
        body: dict[str, Any] = {"did": repo, "active": active, "seq": now, "time": CREATED_AT}
        if status is not None:
            body["status"] = status
        return {"did": repo, "time_us": now, "kind": "account", "account": body}


# -- records -----------------------------------------------------------------------


def community_record(name: str, hosted_by: str, created_by: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "hostedBy": hosted_by,
        "createdBy": created_by,
        "visibility": "public",
        "federation": {"allowExternalDiscovery": True},
        "createdAt": CREATED_AT,
        **extra,
    }


def post_record(community: str, author: str, title: str = "A post", **extra: Any) -> dict[str, Any]:
    return {
        "community": community,
        "author": author,
        "title": title,
        "content": "Some content",
        "createdAt": CREATED_AT,
        **extra,
    }


def ref(target_uri: str) -> dict[str, str]:
    return {"uri": target_uri, "cid": cid(target_uri)}


def comment_record(
    root: str, parent: str, content: str = "A comment", **extra: Any
) -> dict[str, Any]:
    return {
        "reply": {"root": ref(root), "parent": ref(parent)},
        "content": content,
        "createdAt": CREATED_AT,
        **extra,
    }


def vote_record(subject: str, direction: str = "up") -> dict[str, Any]:
    return {"subject": ref(subject), "direction": direction, "createdAt": CREATED_AT}


def subscription_record(community: str, visibility: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": community, "createdAt": CREATED_AT}
    if visibility is not None:
        body["contentVisibility"] = visibility
    return body


def block_record(community: str) -> dict[str, Any]:
    return {"subject": community, "createdAt": CREATED_AT}


def aggregator_record(name: str = "Bot", **extra: Any) -> dict[str, Any]:
    return {"displayName": name, "createdAt": CREATED_AT, **extra}


def authorization_record(
    community: str, aggregator: str, created_by: str, enabled: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "communityDid": community,
        "aggregatorDid": aggregator,
        "createdBy": created_by,
        "enabled": enabled,
        "createdAt": CREATED_AT,
        **extra,
    }


def frames(*events: dict[str, Any] | str | bytes) -> list[Frame]:
    out = []
    for event in events:
        data = event if isinstance(event, str | bytes) else orjson.dumps(event).decode()
        out.append(Frame(data=data, received_at=0.0))
    return out
