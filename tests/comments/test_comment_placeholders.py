"""Deleted comments, inactive authors, viewer state and view details."""

from __future__ import annotations

from coves.db import Database
from tests.comments import factories as f
from tests.comments.conftest import Client
from tests.comments.test_comment_threads import uris

WITHHELD = ("author", "record", "content", "contentFacets", "embed", "viewer")


async def test_deleted_comment_is_a_placeholder_keeping_replies(
    db: Database, client: Client
) -> None:
    post = await f.thread_fixture(db)
    gone = await f.comment(db, post, deleted=True, minutes=5, embed={"$type": "x"})
    child = await f.comment(db, post, gone, content="still here", minutes=6)
    grandchild = await f.comment(db, post, child, minutes=7)
    live = await f.comment(db, post, minutes=1)

    res = await client.get({"post": post.uri, "sort": "new"}, viewer="did:plc:viewer")

    assert uris(res.body["comments"]) == [gone.uri, live.uri]  # position kept
    node = res.body["comments"][0]
    placeholder = node["comment"]
    assert placeholder["isDeleted"] is True
    assert placeholder["deletionReason"] == "author"
    assert placeholder["deletedAt"] == "2026-01-01T12:06:00.000Z"
    assert placeholder["uri"] == gone.uri and placeholder["cid"] == gone.cid
    assert placeholder["post"] == {"uri": post.uri, "cid": post.cid}
    for key in WITHHELD:
        assert key not in placeholder
    assert uris(node["replies"]) == [child.uri]
    assert node["replies"][0]["comment"]["content"] == "still here"
    assert uris(node["replies"][0]["replies"]) == [grandchild.uri]
    assert "isDeleted" not in res.body["comments"][1]["comment"]


async def test_deleted_leaves_and_dead_branches_are_omitted(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    await f.comment(db, post, deleted=True, minutes=1)  # deleted leaf at the top level
    top = await f.comment(db, post, minutes=2)
    await f.comment(db, post, top, deleted=True, minutes=3)  # deleted leaf reply
    dead = await f.comment(db, post, deleted=True, minutes=4)  # deleted over deleted leaf
    await f.comment(db, post, dead, deleted=True, minutes=5)

    res = await client.get({"post": post.uri, "sort": "new"})

    assert uris(res.body["comments"]) == [top.uri]
    assert "replies" not in res.body["comments"][0]
    assert "hasMore" not in res.body["comments"][0]


async def test_deleted_chain_keeps_deep_live_reply_reachable(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    a = await f.comment(db, post, deleted=True)
    b = await f.comment(db, post, a, deleted=True, minutes=1)
    c = await f.comment(db, post, b, minutes=2)
    res = await client.get({"post": post.uri})
    node = res.body["comments"][0]
    assert node["comment"]["uri"] == a.uri and node["comment"]["isDeleted"] is True
    assert node["replies"][0]["comment"]["uri"] == b.uri
    assert node["replies"][0]["replies"][0]["comment"]["uri"] == c.uri

    shallow = await client.get({"post": post.uri, "depth": 0})
    assert shallow.body["comments"][0]["hasMore"] is True


async def test_inactive_author_is_a_placeholder(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    await f.user(db, "did:plc:gone", "gone.test", active=False)
    hidden = await f.comment(db, post, author="did:plc:gone", content="secret", minutes=1)
    reply = await f.comment(db, post, hidden, author="did:plc:alice", minutes=2)

    res = await client.get({"post": post.uri}, viewer="did:plc:viewer")

    node = res.body["comments"][0]
    view = node["comment"]
    assert view["uri"] == hidden.uri
    assert view["isDeleted"] is True and view["deletionReason"] == "account"
    assert "deletedAt" not in view
    for key in WITHHELD:
        assert key not in view
    assert "secret" not in str(res.body)
    assert uris(node["replies"]) == [reply.uri]


async def test_viewer_state(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    up = await f.comment(db, post, minutes=1)
    down = await f.comment(db, post, up, minutes=2)
    untouched = await f.comment(db, post, minutes=3)
    up_vote = await f.vote(db, "did:plc:viewer", up, 1)
    down_vote = await f.vote(db, "did:plc:viewer", down, -1)
    await f.vote(db, "did:plc:someone", untouched, 1)

    res = await client.get({"post": post.uri, "sort": "new"}, viewer="did:plc:viewer")
    assert res.status == 200
    by_uri = {n["comment"]["uri"]: n for n in res.body["comments"]}
    assert by_uri[up.uri]["comment"]["viewer"] == {"vote": "up", "voteUri": up_vote}
    reply = by_uri[up.uri]["replies"][0]["comment"]
    assert reply["viewer"] == {"vote": "down", "voteUri": down_vote}
    assert by_uri[untouched.uri]["comment"]["viewer"] == {}
    assert res.body["post"]["viewer"] == {}

    post_vote = await f.vote(db, "did:plc:other", post, 1)
    other = await client.get({"post": post.uri, "sort": "new"}, viewer="did:plc:other")
    assert other.body["post"]["viewer"] == {"vote": "up", "voteUri": post_vote}
    assert all(n["comment"]["viewer"] == {} for n in other.body["comments"])

    anonymous = await client.get({"post": post.uri, "sort": "new"})
    for node in anonymous.body["comments"]:
        assert "viewer" not in node["comment"]
    assert "viewer" not in anonymous.body["post"]


async def test_deleted_vote_is_not_viewer_state(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    target = await f.comment(db, post)
    await f.vote(db, "did:plc:viewer", target, 1)
    await db.execute("UPDATE votes SET effective = false, deleted_at = now()")
    res = await client.get({"post": post.uri}, viewer="did:plc:viewer")
    assert res.body["comments"][0]["comment"]["viewer"] == {}


async def test_author_profile_and_embed_blobs_become_urls(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    await f.user(
        db,
        "did:plc:alice",
        "alice.test",
        display_name="Alice",
        avatar_cid="bafkreiavatar",
        pds_url="https://pds.alice.example",
    )
    image = {"$type": "blob", "ref": {"$link": "bafkreiimage"}, "mimeType": "image/png"}
    embed = {
        "$type": "social.coves.embed.images",
        "images": [{"image": image, "alt": "a cat"}],
    }
    facets = [{"index": {"byteStart": 0, "byteEnd": 5}, "features": []}]
    labels = {"values": [{"val": "spoiler"}]}
    await f.comment(db, post, embed=embed, facets=facets, langs=["en"], labels=labels)
    await db.execute("UPDATE comments SET edited_at = %s", (f.BASE_TIME,))

    res = await client.get({"post": post.uri})
    view = res.body["comments"][0]["comment"]
    base = "https://pds.alice.example/xrpc/com.atproto.sync.getBlob?did=did%3Aplc%3Aalice&cid="
    assert view["author"] == {
        "did": "did:plc:alice",
        "handle": "alice.test",
        "displayName": "Alice",
        "avatar": base + "bafkreiavatar",
    }
    assert view["embed"] == {
        "$type": "social.coves.embed.images#view",
        "images": [
            {"thumb": base + "bafkreiimage", "fullsize": base + "bafkreiimage", "alt": "a cat"}
        ],
    }
    assert view["contentFacets"] == facets
    assert view["langs"] == ["en"]
    assert view["labels"] == labels
    assert view["editedAt"] == "2026-01-01T12:00:00.000Z"
