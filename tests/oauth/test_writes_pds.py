"""Every write through Coves, signed in through the reference PDS's own OAuth server.

Each write lands in the user's real repository (checked with the PDS's own
com.atproto.repo.getRecord) and is visible through Coves' reads the moment the
call returns; the stream's later echo of the same commit changes nothing.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coves import clock
from coves.atproto.syntax import format_datetime
from coves.db import Database
from tests.oauth.live import Live, open_live
from tests.oauth.writes_support import SignedIn, seed_post, sign_in
from tests.support.events import cid, tid
from tests.support.pds import TestPds

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def live(pds: TestPds, db: Database) -> AsyncIterator[Live]:
    async with open_live(pds, db) as live:
        yield live


async def post_view(user: SignedIn, uri: str) -> dict[str, Any]:
    response = await user.query("social.coves.community.post.get", uris=uri)
    assert response.status_code == 200, await response.get_data()
    (view,) = (await response.get_json())["posts"]
    return view  # type: ignore[no-any-return]


async def test_votes_toggle_and_are_read_at_once(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    subject = {"uri": post, "cid": post_cid}

    up = await user.call("social.coves.feed.vote.create", {"subject": subject, "direction": "up"})
    assert up.status_code == 200, await up.get_data()
    vote = await up.get_json()
    assert vote["uri"].startswith(f"at://{user.did}/social.coves.feed.vote/")
    stored = await user.pds_record(vote["uri"])
    assert stored["cid"] == vote["cid"]
    assert stored["value"]["direction"] == "up" and stored["value"]["subject"] == subject
    view = await post_view(user, post)
    assert view["stats"]["upvotes"] == 1 and view["stats"]["score"] == 1
    assert view["viewer"]["vote"] == "up" and view["viewer"]["voteUri"] == vote["uri"]

    # The other direction rewrites the same record.
    down = await user.call(
        "social.coves.feed.vote.create", {"subject": subject, "direction": "down"}
    )
    flipped = await down.get_json()
    assert flipped["uri"] == vote["uri"] and flipped["cid"] != vote["cid"]
    assert (await user.pds_record(vote["uri"]))["value"]["direction"] == "down"
    view = await post_view(user, post)
    assert (view["stats"]["upvotes"], view["stats"]["downvotes"]) == (0, 1)

    # The same direction again removes it, and still answers a JSON object.
    again = await user.call(
        "social.coves.feed.vote.create", {"subject": subject, "direction": "down"}
    )
    assert again.status_code == 200
    assert await again.get_json() == {}
    assert await user.pds_record(vote["uri"]) is None
    view = await post_view(user, post)
    assert (view["stats"]["upvotes"], view["stats"]["downvotes"]) == (0, 0)
    assert "vote" not in view.get("viewer", {})

    # vote.delete removes a vote; deleting again is a clear 404.
    await user.call("social.coves.feed.vote.create", {"subject": subject, "direction": "up"})
    deleted = await user.call("social.coves.feed.vote.delete", {"subject": subject})
    assert deleted.status_code == 200 and await deleted.get_json() == {}
    assert (await post_view(user, post))["stats"]["upvotes"] == 0
    missing = await user.call("social.coves.feed.vote.delete", {"subject": subject})
    assert missing.status_code == 404
    assert (await missing.get_json())["error"] == "VoteNotFound"


async def test_vote_input_errors(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    cases = [
        ({"subject": {"uri": post, "cid": post_cid}, "direction": "sideways"}, 400),
        ({"subject": {"uri": post}, "direction": "up"}, 400),
        ({"subject": {"uri": post + "x", "cid": post_cid}, "direction": "up"}, 404),
        (
            {
                "subject": {
                    "uri": f"at://{user.did}/social.coves.actor.profile/self",
                    "cid": post_cid,
                },
                "direction": "up",
            },
            400,
        ),
    ]
    for body, status in cases:
        response = await user.call("social.coves.feed.vote.create", body)
        assert response.status_code == status, (body, await response.get_data())
        assert "error" in await response.get_json()


async def test_comments_create_update_delete(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    root = {"uri": post, "cid": post_cid}
    created = await user.call(
        "social.coves.community.comment.create",
        {"reply": {"root": root, "parent": root}, "content": "first!", "langs": ["en"]},
    )
    assert created.status_code == 200, await created.get_data()
    comment = await created.get_json()
    stored = await user.pds_record(comment["uri"])
    assert stored["value"]["content"] == "first!" and stored["value"]["reply"]["root"] == root

    # A reply to the comment, then the thread as Coves serves it.
    reply = await user.call(
        "social.coves.community.comment.create",
        {"reply": {"root": root, "parent": comment}, "content": "a reply"},
    )
    assert reply.status_code == 200, await reply.get_data()
    thread = await user.query("social.coves.community.comment.getComments", post=post)
    body = await thread.get_json()
    (top,) = body["comments"]
    assert top["comment"]["uri"] == comment["uri"]
    assert top["comment"]["record"]["content"] == "first!"
    assert top["replies"][0]["comment"]["uri"] == (await reply.get_json())["uri"]
    assert body["post"]["stats"]["commentCount"] == 2

    updated = await user.call(
        "social.coves.community.comment.update", {"uri": comment["uri"], "content": "edited"}
    )
    assert updated.status_code == 200, await updated.get_data()
    edit = await updated.get_json()
    assert edit["uri"] == comment["uri"] and edit["cid"] != comment["cid"]
    stored = await user.pds_record(comment["uri"])
    assert stored["value"]["content"] == "edited"
    assert stored["value"]["reply"]["root"] == root  # threading unchanged
    thread = await (
        await user.query("social.coves.community.comment.getComments", post=post)
    ).get_json()
    assert thread["comments"][0]["comment"]["record"]["content"] == "edited"

    deleted = await user.call("social.coves.community.comment.delete", {"uri": comment["uri"]})
    assert deleted.status_code == 200
    assert await user.pds_record(comment["uri"]) is None
    thread = await (
        await user.query("social.coves.community.comment.getComments", post=post)
    ).get_json()
    assert thread["comments"][0]["comment"].get("isDeleted") is True


async def test_comment_errors(live: Live) -> None:
    user = await sign_in(live)
    other = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    root = {"uri": post, "cid": post_cid}
    missing_root = {"uri": post[:-3] + "zzz", "cid": post_cid}
    response = await user.call(
        "social.coves.community.comment.create",
        {"reply": {"root": missing_root, "parent": missing_root}, "content": "x"},
    )
    assert response.status_code == 404
    too_long = await user.call(
        "social.coves.community.comment.create",
        {"reply": {"root": root, "parent": root}, "content": "x" * 3001},
    )
    assert too_long.status_code == 400
    created = await (
        await user.call(
            "social.coves.community.comment.create",
            {"reply": {"root": root, "parent": root}, "content": "mine"},
        )
    ).get_json()
    for nsid, body in (
        ("social.coves.community.comment.update", {"uri": created["uri"], "content": "hijack"}),
        ("social.coves.community.comment.delete", {"uri": created["uri"]}),
    ):
        refused = await other.call(nsid, body)
        assert refused.status_code == 403, nsid
    assert (await user.pds_record(created["uri"]))["value"]["content"] == "mine"


async def test_subscriptions_and_community_blocks(live: Live) -> None:
    user = await sign_in(live)
    community, _post, _cid = await seed_post(live)
    sub = await user.call(
        "social.coves.community.subscribe", {"community": community, "contentVisibility": 5}
    )
    assert sub.status_code == 200, await sub.get_data()
    first = await sub.get_json()
    assert first["uri"] and first["existing"] is False
    stored = await user.pds_record(first["uri"])
    assert stored["value"]["subject"] == community and stored["value"]["contentVisibility"] == 5
    got = await (await user.query("social.coves.community.get", community=community)).get_json()
    assert got["viewer"]["subscribed"] is True
    assert got["subscriberCount"] == 1
    again = await (
        await user.call("social.coves.community.subscribe", {"community": community})
    ).get_json()
    assert again == {**first, "existing": True}
    gone = await user.call("social.coves.community.unsubscribe", {"community": community})
    assert gone.status_code == 200 and (await gone.get_json()) == {"success": True}
    assert await user.pds_record(first["uri"]) is None
    got = await (await user.query("social.coves.community.get", community=community)).get_json()
    assert not got.get("viewer", {}).get("subscribed")

    block = await user.call("social.coves.community.blockCommunity", {"community": community})
    assert block.status_code == 200, await block.get_data()
    ref = (await block.get_json())["block"]
    assert ref["recordUri"].startswith(f"at://{user.did}/social.coves.community.block/")
    assert (await user.pds_record(ref["recordUri"]))["cid"] == ref["recordCid"]
    assert (
        await (
            await user.call("social.coves.community.blockCommunity", {"community": community})
        ).get_json()
    )["block"] == ref
    unblocked = await user.call("social.coves.community.unblockCommunity", {"community": community})
    assert unblocked.status_code == 200
    assert await user.pds_record(ref["recordUri"]) is None


async def test_private_community_refuses_subscription(live: Live) -> None:
    user = await sign_in(live)
    community, _post, _cid = await seed_post(live, visibility="private")
    response = await user.call("social.coves.community.subscribe", {"community": community})
    # To a non-member a private community does not exist, as community.get answers.
    assert response.status_code == 404, await response.get_data()
    assert (await response.get_json())["error"] == "NotFound"
    assert await user.pds_records("social.coves.community.subscription") == []
    unknown = await user.call(
        "social.coves.community.subscribe", {"community": "did:plc:nosuchcommunity000000"}
    )
    assert unknown.status_code == 404


async def test_update_profile_with_an_avatar(live: Live) -> None:
    user = await sign_in(live)
    response = await user.call(
        "social.coves.actor.updateProfile",
        {
            "displayName": "Alice",
            "bio": "hello",
            "avatarBlob": base64.b64encode(PNG).decode(),
            "avatarMimeType": "image/jpeg",  # a claim; the bytes say PNG
        },
    )
    assert response.status_code == 200, await response.get_data()
    ref = await response.get_json()
    assert ref["uri"] == f"at://{user.did}/social.coves.actor.profile/self"
    stored = (await user.pds_record(ref["uri"]))["value"]
    assert (stored["displayName"], stored["description"]) == ("Alice", "hello")
    blob_cid = stored["avatar"]["ref"]["$link"]
    assert stored["avatar"]["mimeType"] == "image/png"
    served = await live.pds.xrpc(
        "GET", "com.atproto.sync.getBlob", params={"did": user.did, "cid": blob_cid}
    )
    assert served.status_code == 200 and served.content == PNG
    profile = await (await user.query("social.coves.actor.getProfile", actor=user.did)).get_json()
    assert profile["displayName"] == "Alice"
    assert blob_cid in profile["avatar"]
    me = await (await live.app.test_client().get("/api/me", headers=user.headers())).get_json()
    assert blob_cid in me["avatar"]
    # A second update keeps what it does not send.
    await user.call("social.coves.actor.updateProfile", {"bio": "changed"})
    stored = (await user.pds_record(ref["uri"]))["value"]
    assert (stored["displayName"], stored["description"]) == ("Alice", "changed")
    assert stored["avatar"]["ref"]["$link"] == blob_cid


async def test_update_profile_checks_images_by_their_bytes(live: Live) -> None:
    user = await sign_in(live)
    for body, status, error in (
        ({"avatarBlob": base64.b64encode(b"GIF89a....").decode()}, 400, "InvalidImage"),
        ({"avatarBlob": "not base64!!"}, 400, "InvalidImage"),
        (
            {"avatarBlob": base64.b64encode(PNG).decode(), "avatarMimeType": "image/gif"},
            400,
            "InvalidRequest",
        ),
        (
            {"avatarBlob": base64.b64encode(PNG + b"\0" * (1_000_001 - len(PNG))).decode()},
            413,
            "BlobTooLarge",
        ),
        ({"avatarBlob": base64.b64encode(PNG + b"\0" * 1_500_000).decode()}, 400, "InvalidRequest"),
        ({"avatarBlob": base64.b64encode(PNG * 200_000).decode()}, 413, "PayloadTooLarge"),
    ):
        response = await user.call("social.coves.actor.updateProfile", body)
        assert response.status_code == status, await response.get_data()
        assert (await response.get_json())["error"] == error
    assert await user.pds_record(f"at://{user.did}/social.coves.actor.profile/self") is None


async def test_blocking_an_account(live: Live) -> None:
    user = await sign_in(live)
    other = await sign_in(live)
    block = await user.call("social.coves.actor.blockUser", {"subject": other.account.handle})
    assert block.status_code == 200, await block.get_data()
    ref = (await block.get_json())["block"]
    assert ref["recordUri"].startswith(f"at://{user.did}/social.coves.actor.block/")
    stored = await user.pds_record(ref["recordUri"])
    assert stored["cid"] == ref["recordCid"] and stored["value"]["subject"] == other.did
    listed = await (await user.query("social.coves.actor.getBlockedUsers")).get_json()
    assert [b["blockedDid"] for b in listed["blocks"]] == [other.did]
    # By DID, a second time: the same block.
    again = await user.call("social.coves.actor.blockUser", {"subject": other.did})
    assert (await again.get_json())["block"] == ref
    for subject, status in ((user.did, 400), ("nobody.coves.test", 404), ("did:nope", 400)):
        refused = await user.call("social.coves.actor.blockUser", {"subject": subject})
        assert refused.status_code == status, subject
    unblocked = await user.call("social.coves.actor.unblockUser", {"subject": other.did})
    assert unblocked.status_code == 200 and (await unblocked.get_json()) == {"success": True}
    assert await user.pds_record(ref["recordUri"]) is None
    listed = await (await user.query("social.coves.actor.getBlockedUsers")).get_json()
    assert listed["blocks"] == []
    missing = await user.call("social.coves.actor.unblockUser", {"subject": other.did})
    assert missing.status_code == 404


VOTE = "social.coves.feed.vote"
COMMENT = "social.coves.community.comment"
SUBSCRIPTION = "social.coves.community.subscription"


async def aimed_at(user: SignedIn, post: str, post_cid: str) -> dict[str, tuple[int, str]]:
    """(status, error) of a vote and a comment on ``post``."""
    ref = {"uri": post, "cid": post_cid}
    answers = {}
    for nsid, body in (
        ("social.coves.feed.vote.create", {"subject": ref, "direction": "up"}),
        (f"{COMMENT}.create", {"reply": {"root": ref, "parent": ref}, "content": "hi"}),
    ):
        response = await user.call(nsid, body)
        answers[nsid] = (response.status_code, (await response.get_json()).get("error", ""))
    return answers


async def nothing_written(user: SignedIn) -> None:
    for collection in (VOTE, COMMENT, SUBSCRIPTION):
        assert await user.pds_records(collection) == [], collection


async def test_writes_on_a_private_communitys_post_are_not_found(live: Live) -> None:
    """A non-member cannot vote or comment in a private community, and is told what
    community.get tells them: nothing is there."""
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live, visibility="private")
    assert await aimed_at(user, post, post_cid) == {
        "social.coves.feed.vote.create": (404, "SubjectNotFound"),
        f"{COMMENT}.create": (404, "NotFound"),
    }
    await nothing_written(user)


async def test_writes_on_a_deleted_post_are_not_found(live: Live) -> None:
    user = await sign_in(live)
    community, post, post_cid = await seed_post(live)
    rkey = post.rsplit("/", 1)[1]
    now_us = int(clock.wall_now() * 1_000_000)
    assert await live.ctx.pds.writer.index(
        did=community,
        collection="social.coves.community.post",
        rkey=rkey,
        operation="delete",
        rev=tid(now_us),
        cid=None,
        record=None,
    )
    assert await aimed_at(user, post, post_cid) == {
        "social.coves.feed.vote.create": (404, "SubjectNotFound"),
        f"{COMMENT}.create": (404, "NotFound"),
    }
    await nothing_written(user)


async def test_writes_across_a_block_with_the_community_are_refused(live: Live) -> None:
    """Both directions: the caller blocks the community, or the community's account
    blocks the caller. Votes, comments and subscriptions are 403 Blocked and
    nothing reaches the caller's repository; undoing one's own block still works."""
    blocker, blocked = await sign_in(live), await sign_in(live)
    community, post, post_cid = await seed_post(live)
    response = await blocker.call("social.coves.community.blockCommunity", {"community": community})
    assert response.status_code == 200, await response.get_data()
    now_us = int(clock.wall_now() * 1_000_000)
    assert await live.ctx.pds.writer.index(
        did=community,
        collection="social.coves.actor.block",
        rkey=tid(now_us),
        operation="create",
        rev=tid(now_us),
        cid=cid("communityblock"),
        record={
            "$type": "social.coves.actor.block",
            "subject": blocked.did,
            "createdAt": format_datetime(clock.utcnow()),
        },
    )
    for user in (blocker, blocked):
        assert await aimed_at(user, post, post_cid) == {
            "social.coves.feed.vote.create": (403, "Blocked"),
            f"{COMMENT}.create": (403, "Blocked"),
        }
        subscribed = await user.call("social.coves.community.subscribe", {"community": community})
        assert subscribed.status_code == 403
        assert (await subscribed.get_json())["error"] == "Blocked"
        await nothing_written(user)
    unblocked = await blocker.call(
        "social.coves.community.unblockCommunity", {"community": community}
    )
    assert unblocked.status_code == 200, await unblocked.get_data()
    up = await blocker.call(
        "social.coves.feed.vote.create",
        {"subject": {"uri": post, "cid": post_cid}, "direction": "up"},
    )
    assert up.status_code == 200, await up.get_data()


async def test_replies_and_votes_on_a_withheld_comment_are_refused(live: Live) -> None:
    """A deleted comment and one whose author the caller blocks are placeholders to
    the reads: no reply or vote reaches them."""
    author, other = await sign_in(live), await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    root = {"uri": post, "cid": post_cid}
    comments = []
    for content in ("to delete", "to block"):
        made = await author.call(
            f"{COMMENT}.create", {"reply": {"root": root, "parent": root}, "content": content}
        )
        assert made.status_code == 200, await made.get_data()
        comments.append(await made.get_json())
    deleted, blocked = comments
    gone = await author.call(f"{COMMENT}.delete", {"uri": deleted["uri"]})
    assert gone.status_code == 200, await gone.get_data()
    block = await other.call("social.coves.actor.blockUser", {"subject": author.did})
    assert block.status_code == 200, await block.get_data()
    for parent, answer in (
        (deleted, {"reply": (404, "ParentNotFound"), "vote": (404, "SubjectNotFound")}),
        (blocked, {"reply": (403, "Blocked"), "vote": (403, "Blocked")}),
    ):
        ref = {"uri": parent["uri"], "cid": parent["cid"]}
        reply = await other.call(
            f"{COMMENT}.create", {"reply": {"root": root, "parent": ref}, "content": "re"}
        )
        vote = await other.call(
            "social.coves.feed.vote.create", {"subject": ref, "direction": "up"}
        )
        got = {
            "reply": (reply.status_code, (await reply.get_json())["error"]),
            "vote": (vote.status_code, (await vote.get_json())["error"]),
        }
        assert got == answer, parent["uri"]
    await nothing_written(other)
