"""Read-your-writes across worker processes: the real ``coves serve --workers 2`` and
the real PDS, a signed-in user writing through Coves, every read after each write
over a new connection (so requests land on both workers).

Each worker keeps built views (post views, comment threads, community lookups) for
a minute here (READ_CACHE_SECONDS=60), and before every write both are seen holding
them (their heartbeats in ``_health``). So a read that is right after a write is
right because the write dropped the views in the worker that served it and, over
the invalidation channel, in the other one too: never because a TTL ran out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from coves.db import Database
from tests.e2e.client import Client, coves_for_users, thread_shape, until
from tests.support.pds import PdsAccount, TestPds

READS = 8  # after each write, over new connections: both workers answer some


async def test_a_write_on_one_worker_is_read_on_every_worker(
    pds: TestPds, db: Database, server_dir: Path
) -> None:
    coves = coves_for_users(server_dir, pds, db, READ_CACHE_SECONDS="60", COVES_WORKERS="2")
    try:
        with trio.fail_after(300):
            await coves.start()
            api = Client(pds, coves.base, fresh_connections=True)
            alice = await api.sign_up()
            await api.sign_in(alice)
            await _journey(api, alice)
    except BaseException:
        print(coves.log()[-6000:])
        raise
    finally:
        coves.stop_quietly()


async def _journey(api: Client, alice: PdsAccount) -> None:
    created = await api.call(
        "social.coves.community.create", {"name": api.pds.unique_name("w")[:16]}, alice
    )
    community = created["did"]
    post = await api.call(
        "social.coves.community.post.create",
        {"community": community, "title": "Before", "content": "text"},
        alice,
    )
    root = {"uri": post["uri"], "cid": post["cid"]}
    first = await api.call(
        "social.coves.community.comment.create",
        {"reply": {"root": root, "parent": root}, "content": "first"},
        alice,
    )
    reply = await api.call(
        "social.coves.community.comment.create",
        {"reply": {"root": root, "parent": first}, "content": "reply"},
        alice,
    )

    async def thread() -> dict[str, Any]:
        return await api.get(
            "social.coves.community.comment.getComments", {"post": post["uri"]}, alice
        )

    async def feed_post() -> dict[str, Any]:
        body = await api.get(
            "social.coves.feed.getCommunity", {"community": community, "sort": "new"}, alice
        )
        [item] = body["feed"]
        return item["post"]  # type: ignore[no-any-return]

    async def warm() -> None:
        """Both workers hold the thread and the post's view (as their heartbeats say)."""

        async def both_hold() -> None:
            for _ in range(4):
                await thread()
                await feed_post()
            held = await _read_caches(api)
            assert set(held) == {"api-0", "api-1"}, held
            for name, sizes in held.items():
                assert sizes["threads"] >= 1 and sizes["posts"] >= 1, (name, held)

        await until(both_hold, timeout=60)

    async def every_read(check: Any) -> None:
        for _ in range(READS):
            await check()

    # A reply deleted: gone from the thread and from the post's count, everywhere.
    await warm()
    assert thread_shape((await thread())["comments"]) == [("first", [("reply", [])])]
    await api.call("social.coves.community.comment.delete", {"uri": reply["uri"]}, alice)

    async def reply_gone() -> None:
        body = await thread()
        assert thread_shape(body["comments"]) == [("first", [])], body
        assert body["post"]["stats"]["commentCount"] == 1
        assert (await feed_post())["stats"]["commentCount"] == 1

    await every_read(reply_gone)

    # A vote on a comment: the thread build that shows it.
    await warm()
    await api.call(
        "social.coves.feed.vote.create",
        {"subject": {"uri": first["uri"], "cid": first["cid"]}, "direction": "up"},
        alice,
    )

    async def comment_voted() -> None:
        [top] = (await thread())["comments"]
        assert top["comment"]["stats"]["upvotes"] == 1, top
        assert top["comment"]["viewer"]["vote"] == "up"

    await every_read(comment_voted)

    # The post edited: its view in feeds and threads.
    await warm()
    edited = await api.call(
        "social.coves.community.post.update",
        {"uri": post["uri"], "cid": post["cid"], "title": "After", "content": "text"},
        alice,
    )
    assert edited["uri"] == post["uri"]

    async def post_edited() -> None:
        assert (await feed_post())["title"] == "After"
        assert (await thread())["post"]["title"] == "After"

    await every_read(post_edited)

    # The author's profile: every view that shows them.
    await warm()
    await api.call("social.coves.actor.updateProfile", {"displayName": "Alice A."}, alice)

    async def profile_shown() -> None:
        assert (await feed_post())["author"].get("displayName") == "Alice A."
        [top] = (await thread())["comments"]
        assert top["comment"]["author"].get("displayName") == "Alice A."

    await every_read(profile_shown)

    # The community's profile: the post views that show it.
    await warm()
    await api.call(
        "social.coves.community.update",
        {"communityDid": community, "displayName": "Renamed"},
        alice,
    )

    async def community_renamed() -> None:
        assert (await feed_post())["community"].get("displayName") == "Renamed"

    await every_read(community_renamed)

    # The community deleted: its feed is gone on every worker (community lookups).
    await warm()
    await api.call("social.coves.community.delete", {"communityDid": community}, alice)

    async def community_gone() -> None:
        status, body = await api.get_status(
            "social.coves.feed.getCommunity", {"community": community, "sort": "new"}, alice
        )
        assert status == 404 and body["error"] == "CommunityNotFound", (status, body)

    await every_read(community_gone)

    # Each worker got every notification the other sent. Which worker served each
    # write is the kernel's choice (a new connection each time), so either may have
    # sent none; the writes sent some, and they crossed.
    health = await api.get("_health", {})
    channel = {
        p["name"]: p["children"]["invalidation"]["details"]
        for p in health["processes"]
        if p["name"] in ("api-0", "api-1")
    }
    assert set(channel) == {"api-0", "api-1"}, channel
    sent = {name: details["published"] for name, details in channel.items()}
    got = {name: details["received"] for name, details in channel.items()}
    assert sent["api-0"] + sent["api-1"] >= 1, channel
    assert got["api-0"] >= sent["api-1"] and got["api-1"] >= sent["api-0"], channel


async def _read_caches(api: Client) -> dict[str, dict[str, int]]:
    """Each API worker's cached built views, as its last heartbeat reported them."""
    async with api.http() as client:
        response = await client.get("/xrpc/_health")
    assert response.status_code == 200, response.text
    return {
        p["name"]: p["readCaches"]
        for p in response.json()["processes"]
        if p.get("role") == "api" and p.get("healthy") and "readCaches" in p
    }
