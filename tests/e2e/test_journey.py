"""The user journey end to end: the real reference PDS, the real ``coves serve`` (its
default number of API worker processes) reading its firehose, and after each step the
reads a client makes (feeds, threads, counts, viewer state, profile, post.get) showing
exactly what happened.

Every step a user takes in the apps goes through Coves, as a user signed in with
OAuth through Coves; account-level operations that belong to the user's PDS (a handle
change, deactivation) go to the PDS:

 1. two users sign up through Coves (social.coves.actor.signup: an account on the
    instance PDS) and sign in with OAuth through the PDS's authorization server → /api/me
 2. one creates a community (community.create: an account of its own on the PDS,
    its credentials sealed in Coves)                          → community.get
 3. both subscribe (community.subscribe)                      → counts, viewer state
 4. posts: text, link (Coves fetches the card), image (post.uploadImage, then
    post.create)                                              → feed.getCommunity,
                                                                post.get, timeline
 5. a comment, a reply, a reply to that (comment.create)      → getComments nested, counts
 6. both vote on posts and a comment (vote.create)            → stats, viewer.vote
 7. an edit (post.update) and a delete (comment.delete)       → post.get, getComments,
                                                                counts
 8. one blocks the community (blockCommunity)                 → viewer state, getTimeline
 9. a handle changes (PDS: identity.updateHandle)             → verified again, then shown
                                                                (DEV_HANDLE_DOMAINS: the
                                                                PDS resolves *.coves.test)
10. an account is deactivated, then reactivated (PDS)        → feeds hide, then show its posts

Writes through Coves are read back at once, whichever worker serves the next read
(write-then-index, and the invalidation channel for every worker's caches), so the
reads after those steps are checked once, not polled; their firehose echo must change
nothing: the journey ends by waiting until the stream is past every write and checking
the counts again. What the PDS does alone reaches Coves only through its firehose
(signatures verified against the real PLC).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from coves.db import Database
from tests.e2e.client import Client, coves_for_users, thread_shape, until
from tests.e2e.helpers import VOTE, call, put, ref, vote_record
from tests.support.http_server import Reply, TestHTTPServer, http_server
from tests.support.images import make_image
from tests.support.pds import PdsAccount, TestPds

ARTICLE = b"""<!doctype html><html><head>
<meta property="og:title" content="An article worth reading">
<meta property="og:description" content="What it says, in a line.">
<meta property="og:image" content="/cover.png">
<meta property="og:type" content="article">
</head><body>...</body></html>"""


async def test_the_journey(pds: TestPds, db: Database, server_dir: Path) -> None:
    coves = coves_for_users(
        server_dir,
        pds,
        db,
        FIREHOSE_URL=f"ws://127.0.0.1:{pds.port}",  # what the PDS does alone reaches Coves
        FIREHOSE_VERIFY="true",
        JETSTREAM_BATCH_MS="20",
    )
    try:
        with trio.fail_after(360):
            async with http_server() as site:
                await coves.start()
                await _journey(Client(pds, coves.base, fresh_connections=True), pds, db, site)
    except BaseException:
        print(coves.log()[-6000:])
        raise
    finally:
        coves.stop_quietly()


async def _journey(api: Client, pds: TestPds, db: Database, site: TestHTTPServer) -> None:
    # 1. both users sign up through Coves (an account on the instance PDS), then sign in
    alice = await api.sign_up()
    bob = await api.sign_up()
    for user in (alice, bob):
        token = await api.sign_in(user)
        async with api.http() as http:
            me = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["did"] == user.did
        profile = await api.get("social.coves.actor.getProfile", {"actor": user.did})
        assert profile["handle"] == user.handle  # verified both ways through the PDS

    # 2. alice creates the community through Coves
    name = pds.unique_name("c")[:16]
    created = await api.call(
        "social.coves.community.create",
        {"name": name, "displayName": "The journey", "description": "Where it happens"},
        alice,
    )
    community = created["did"]
    assert created["handle"] == f"c-{name}.{pds.handle_domain}"
    view = await api.get("social.coves.community.get", {"community": community})
    assert view["did"] == community and view["createdByDid"] == alice.did
    assert view["handle"] == created["handle"] and view["displayName"] == "The journey"
    assert (view["subscriberCount"], view["postCount"]) == (0, 0)

    # 3. both subscribe
    for user in (alice, bob):
        answer = await api.call("social.coves.community.subscribe", {"community": community}, user)
        assert answer["existing"] is False
    view = await api.get("social.coves.community.get", {"community": community}, alice)
    assert view["subscriberCount"] == 2 and view["viewer"]["subscribed"] is True

    # 4. posts: text, link (the card is Coves' unfurl of the page), image
    cover = make_image("PNG", (120, 60))
    page = site.route("127.0.0.1", "/article", Reply(body=ARTICLE))
    site.route("127.0.0.1", "/cover.png", Reply(body=cover, content_type="image/png"))
    create = "social.coves.community.post.create"
    text = await api.call(
        create, {"community": community, "title": "Text post", "content": "Some text"}, alice
    )
    link = await api.call(
        create,
        {
            "community": community,
            "title": "Link post",
            "embed": {"$type": "social.coves.embed.external", "external": {"uri": page}},
        },
        bob,
    )
    picture = make_image("PNG", (64, 48))
    uploaded = await api.upload_image(community, picture, alice)
    assert uploaded["aspectRatio"] == {"width": 64, "height": 48}
    blob = uploaded["blob"]
    image = await api.call(
        create,
        {
            "community": community,
            "title": "Image post",
            "embed": {
                "$type": "social.coves.embed.images",
                "images": [
                    {"image": blob, "alt": "a pixel", "aspectRatio": uploaded["aspectRatio"]}
                ],
            },
        },
        alice,
    )
    assert await api.feed(community, alice) == [image["uri"], link["uri"], text["uri"]]
    view = await api.post(link["uri"], bob)
    assert view["title"] == "Link post" and view["author"]["did"] == bob.did
    card = view["embed"]["external"]
    assert card["uri"] == page and card["title"] == "An article worth reading"
    assert card["description"] == "What it says, in a line."
    async with httpx.AsyncClient(timeout=20) as plain:
        assert (await plain.get(card["thumb"])).content == cover  # stored in the PDS
        pic = (await api.post(image["uri"], alice))["embed"]["images"][0]
        assert blob["ref"]["$link"] in pic["fullsize"] and pic["alt"] == "a pixel"
        assert (await plain.get(pic["fullsize"])).content == picture
    timeline = await api.get("social.coves.feed.getTimeline", {"sort": "new"}, bob)
    assert len(timeline["feed"]) == 3
    view = await api.get("social.coves.community.get", {"community": community}, alice)
    assert view["postCount"] == 3

    # 5. comments, nested
    root = ref(text["uri"], text["cid"])

    async def comment(user: PdsAccount, parent: dict[str, str], content: str) -> Any:
        return await api.call(
            "social.coves.community.comment.create",
            {"reply": {"root": root, "parent": parent}, "content": content},
            user,
        )

    first = await comment(bob, root, "1")
    second = await comment(alice, ref(first["uri"], first["cid"]), "1.1")
    third = await comment(bob, ref(second["uri"], second["cid"]), "1.1.1")
    # as the writer: anonymous answers may come from the micro-cache (≤ 1 s)
    thread = await api.get("social.coves.community.comment.getComments", {"post": text["uri"]}, bob)
    assert thread_shape(thread["comments"]) == [("1", [("1.1", [("1.1.1", [])])])]
    assert thread["post"]["stats"]["commentCount"] == 3
    assert (await api.post(text["uri"], bob))["stats"]["commentCount"] == 3

    # 6. votes
    for user, subject, direction in (
        (alice, ref(link["uri"], link["cid"]), "up"),
        (bob, root, "down"),
        (alice, ref(first["uri"], first["cid"]), "up"),
    ):
        await api.call(
            "social.coves.feed.vote.create", {"subject": subject, "direction": direction}, user
        )
    linked = await api.post(link["uri"], alice)
    assert linked["stats"]["upvotes"] == 1 and linked["viewer"]["vote"] == "up"
    texted = await api.post(text["uri"], bob)
    assert texted["stats"]["downvotes"] == 1 and texted["viewer"]["vote"] == "down"
    assert (await api.post(text["uri"], alice)).get("viewer", {}).get("vote") is None
    thread = await api.get(
        "social.coves.community.comment.getComments", {"post": text["uri"]}, alice
    )
    assert thread["comments"][0]["comment"]["stats"]["upvotes"] == 1
    assert thread["comments"][0]["comment"]["viewer"]["vote"] == "up"

    # 7. alice edits her post, bob deletes his last reply
    edited = await api.call(
        "social.coves.community.post.update",
        {
            "uri": text["uri"],
            "cid": text["cid"],
            "title": "Text post (edited)",
            "content": "Some text",
        },
        alice,
    )
    await api.call("social.coves.community.comment.delete", {"uri": third["uri"]}, bob)

    async def threaded_after_delete(viewer: PdsAccount | None = bob) -> None:
        thread = await api.get(
            "social.coves.community.comment.getComments", {"post": text["uri"]}, viewer
        )
        shape = thread_shape(thread["comments"])
        assert shape == [("1", [("1.1", [])])], shape
        assert thread["comments"][0]["comment"]["stats"]["upvotes"] == 1
        assert thread["post"]["title"] == "Text post (edited)"
        assert thread["post"]["stats"]["commentCount"] == 2

    for _ in range(4):  # whichever worker answers
        await threaded_after_delete()
        view = await api.post(text["uri"], alice)
        assert view["title"] == "Text post (edited)" and view["cid"] == edited["cid"]
        assert view["stats"]["commentCount"] == 2
        feed = await api.get(
            "social.coves.feed.getCommunity", {"community": community, "sort": "new"}, alice
        )
        by_uri = {item["post"]["uri"]: item["post"] for item in feed["feed"]}
        assert by_uri[text["uri"]]["title"] == "Text post (edited)"

    # 8. bob blocks the community
    await api.call("social.coves.community.blockCommunity", {"community": community}, bob)
    view = await api.get("social.coves.community.get", {"community": community}, bob)
    assert view["viewer"]["blocked"] is True
    timeline = await api.get("social.coves.feed.getTimeline", {"sort": "new"}, bob)
    assert timeline["feed"] == []
    still = await api.get("social.coves.feed.getTimeline", {"sort": "new"}, alice)
    assert len(still["feed"]) == 3

    # 9. bob's handle changes (a PDS operation). Coves shows a handle only once it
    # resolves back to the DID: the #identity event makes Coves verify the new one
    # (here through the instance PDS: DEV_HANDLE_DOMAINS), and every view shows it.
    new_handle = f"n{bob.handle.split('.')[0][-10:]}.{pds.handle_domain}"
    await call(pds, bob, "com.atproto.identity.updateHandle", {"handle": new_handle})

    async def renamed() -> None:
        stored = await db.fetchval("SELECT handle FROM users WHERE did = %s", (bob.did,))
        assert stored == new_handle
        profile = await api.get("social.coves.actor.getProfile", {"actor": bob.did})
        assert profile["handle"] == new_handle
        assert (await api.post(link["uri"], alice))["author"]["handle"] == new_handle
        feed = await api.get(
            "social.coves.feed.getCommunity", {"community": community, "sort": "new"}, alice
        )
        authors = {item["post"]["author"]["did"]: item["post"]["author"] for item in feed["feed"]}
        assert authors[bob.did]["handle"] == new_handle

    await until(renamed, timeout=90)
    # The old handle is nobody's now; the new one resolves to bob through Coves too.
    resolved = await api.get("com.atproto.identity.resolveHandle", {"handle": new_handle})
    assert resolved["did"] == bob.did

    # 10. alice's account is deactivated, then reactivated
    await call(pds, alice, "com.atproto.server.deactivateAccount", {})

    async def hidden() -> None:
        assert await api.feed(community) == [link["uri"]]

    await until(hidden)
    await call(pds, alice, "com.atproto.server.activateAccount")

    async def back() -> None:
        assert await api.feed(community) == [image["uri"], link["uri"], text["uri"]]

    await until(back)

    # The stream is past every write above once a record written after them is
    # indexed: the echoes of Coves' own writes have arrived by then, and they
    # changed nothing.
    await put(pds, alice, VOTE, "3kvote0000009", vote_record(ref(image["uri"], image["cid"]), "up"))

    async def settled() -> None:
        assert (await api.post(image["uri"]))["stats"]["upvotes"] == 1

    await until(settled)
    view = await api.get("social.coves.community.get", {"community": community})
    assert view["subscriberCount"] == 2 and view["postCount"] == 3
    # bob blocked the community: post.get shows him a blocked post now
    await api.post(text["uri"], bob, kind="blockedPost")
    texted = await api.post(text["uri"], alice)
    assert texted["title"] == "Text post (edited)"
    assert texted["stats"] == {"upvotes": 0, "downvotes": 1, "score": -1, "commentCount": 2}
    assert (await api.post(link["uri"]))["stats"]["upvotes"] == 1
    await until(lambda: threaded_after_delete(None))
    dead = await db.fetch("SELECT reason, detail FROM dead_letters")
    assert dead == []
