"""Writing to the real reference PDS as a client would, and waiting for the index.

These helpers speak plain XRPC to the PDS with the account's session token:
records reach Coves only through the PDS's firehose, never through Coves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from coves.db import Database
from tests.support.pds import PdsAccount, TestPds

INSTANCE_DID = "did:web:coves.test"
PROFILE = "social.coves.community.profile"
POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
SUBSCRIPTION = "social.coves.community.subscription"
CREATED_AT = "2026-01-02T03:04:05.000Z"


class PdsError(AssertionError):
    pass


async def put(
    pds: TestPds, account: PdsAccount, collection: str, rkey: str, record: dict[str, Any]
) -> dict[str, Any]:
    """putRecord (create or update) in the account's own repository; returns {uri, cid}."""
    resp = await pds.xrpc(
        "POST",
        "com.atproto.repo.putRecord",
        token=account.access_jwt,
        json={
            "repo": account.did,
            "collection": collection,
            "rkey": rkey,
            "record": {"$type": collection, **record},
        },
    )
    if resp.status_code != 200:
        raise PdsError(f"putRecord {collection}/{rkey}: {resp.status_code} {resp.text}")
    body: dict[str, Any] = resp.json()
    return body


async def delete(pds: TestPds, account: PdsAccount, collection: str, rkey: str) -> None:
    resp = await pds.xrpc(
        "POST",
        "com.atproto.repo.deleteRecord",
        token=account.access_jwt,
        json={"repo": account.did, "collection": collection, "rkey": rkey},
    )
    if resp.status_code != 200:
        raise PdsError(f"deleteRecord {collection}/{rkey}: {resp.status_code} {resp.text}")


async def call(
    pds: TestPds, account: PdsAccount, nsid: str, body: dict[str, Any] | None = None
) -> None:
    resp = await pds.xrpc("POST", nsid, token=account.access_jwt, json=body)
    if resp.status_code != 200:
        raise PdsError(f"{nsid}: {resp.status_code} {resp.text}")


def community_profile(community: PdsAccount, creator: str) -> dict[str, Any]:
    return {
        "name": community.handle.split(".")[0],
        "createdBy": creator,
        "hostedBy": INSTANCE_DID,
        "visibility": "public",
        "createdAt": CREATED_AT,
    }


def post_record(community: str, author: str, title: str) -> dict[str, Any]:
    return {
        "community": community,
        "author": author,
        "title": title,
        "content": f"{title}: body",
        "createdAt": CREATED_AT,
    }


def ref(uri: str, cid: str) -> dict[str, str]:
    return {"uri": uri, "cid": cid}


def comment_record(root: dict[str, str], parent: dict[str, str], text: str) -> dict[str, Any]:
    return {"reply": {"root": root, "parent": parent}, "content": text, "createdAt": CREATED_AT}


def vote_record(subject: dict[str, str], direction: str) -> dict[str, Any]:
    return {"subject": subject, "direction": direction, "createdAt": CREATED_AT}


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, poll: float = 0.1
) -> None:
    """Until ``check()`` holds (the index follows the firehose asynchronously)."""
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(poll)


async def row(db: Database, query: str, *params: Any) -> dict[str, Any] | None:
    return await db.fetchrow(query, params)
