"""post.update (author only, full replacement, swap on the current CID) and
post.delete (author or community creator), against the reference PDS."""

from __future__ import annotations

import trio

from tests.posting.world import POST, Community, World
from tests.support.pds import PdsAccount

CREATE = "social.coves.community.post.create"
UPDATE = "social.coves.community.post.update"
DELETE = "social.coves.community.post.delete"


async def make_post(world: World, author: PdsAccount, community: Community) -> dict[str, str]:
    status, body = await world.call(
        CREATE,
        {
            "community": community.did,
            "title": "Draft",
            "content": "v1",
            "langs": ["en"],
            "tags": ["draft"],
        },
        as_=author,
    )
    assert status == 200, body
    return dict(body)


async def test_edit_replaces_the_editable_fields_and_a_stale_cid_is_a_conflict(
    world: World,
) -> None:
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.community(alice)
        v1 = await make_post(world, alice, community)
        before = (await world.record(v1["uri"]))["value"]
        status, v2 = await world.call(
            UPDATE, {"uri": v1["uri"], "cid": v1["cid"], "content": "v2"}, as_=alice
        )
        assert status == 200, v2
        assert v2["uri"] == v1["uri"] and v2["cid"] != v1["cid"]
        after = (await world.record(v1["uri"]))["value"]
        # Full replacement: title, langs and tags were not sent, so they are gone;
        # community, author and createdAt stay.
        assert after["content"] == "v2"
        assert "title" not in after and "langs" not in after and "tags" not in after
        for kept in ("community", "author", "createdAt"):
            assert after[kept] == before[kept]
        row = await world.db.fetchrow(
            "SELECT cid, content, edited_at FROM posts WHERE uri = %s", (v1["uri"],)
        )
        assert row is not None and row["cid"] == v2["cid"] and row["edited_at"] is not None
        # Editing the version that is no longer current: refused, nothing lost.
        status, body = await world.call(
            UPDATE, {"uri": v1["uri"], "cid": v1["cid"], "content": "stale"}, as_=alice
        )
        assert (status, body["error"]) == (409, "InvalidSwap")
        assert (await world.record(v1["uri"]))["value"]["content"] == "v2"


async def test_an_edit_that_reached_the_pds_first_is_not_overwritten(world: World) -> None:
    """Another writer changes the record on the PDS before Coves indexed it: the
    swap on the CID Coves knows makes the PDS refuse, reported as a conflict."""
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.community(alice)
        v1 = await make_post(world, alice, community)
        record = (await world.record(v1["uri"]))["value"]
        rkey = v1["uri"].rsplit("/", 1)[-1]
        await world.ctx.pds.instance.put_record(
            await world.community_auth(community),
            repo=community.did,
            collection=POST,
            rkey=rkey,
            record={**record, "content": "edited elsewhere"},
        )
        status, body = await world.call(UPDATE, {"uri": v1["uri"], "content": "mine"}, as_=alice)
        assert (status, body["error"]) == (409, "InvalidSwap")
        assert (await world.record(v1["uri"]))["value"]["content"] == "edited elsewhere"


async def test_only_the_author_edits(world: World) -> None:
    with trio.fail_after(60):
        alice, mallory = await world.user(), await world.user()
        community = await world.community(alice)
        v1 = await make_post(world, alice, community)
        status, body = await world.call(UPDATE, {"uri": v1["uri"], "content": "pwned"}, as_=mallory)
        assert (status, body["error"]) == (403, "NotAuthorized")
        status, body = await world.call(
            UPDATE,
            {"uri": v1["uri"].replace(v1["uri"][-13:], "3kzzzzzzzzzz2"), "content": "x"},
            as_=alice,
        )
        assert (status, body["error"]) == (404, "PostNotFound")


async def test_delete_by_the_author_or_the_community_creator(world: World) -> None:
    with trio.fail_after(60):
        creator, alice, mallory = await world.user(), await world.user(), await world.user()
        community = await world.community(creator)
        first = await make_post(world, alice, community)
        second = await make_post(world, alice, community)
        status, body = await world.call(DELETE, {"uri": first["uri"]}, as_=mallory)
        assert (status, body["error"]) == (403, "NotAuthorized")
        status, body = await world.call(DELETE, {"uri": first["uri"]}, as_=alice)
        assert (status, body) == (200, {})
        status, body = await world.call(DELETE, {"uri": second["uri"]}, as_=creator)
        assert status == 200, body
        for uri in (first["uri"], second["uri"]):
            assert (await world.record(uri))["status"] == 400  # RecordNotFound on the PDS
            status, got = await world.client.get("social.coves.community.post.get", {"uris": uri})
            assert got["posts"][0].get("deleted") is True or got["posts"][0].get("notFound") is True
        status, feed = await world.client.get(
            "social.coves.feed.getCommunity", {"community": community.did, "sort": "new"}
        )
        assert feed["feed"] == []
        status, body = await world.call(DELETE, {"uri": first["uri"]}, as_=alice)
        assert (status, body["error"]) == (404, "PostNotFound")
