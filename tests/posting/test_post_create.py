"""post.create against the reference PDS: text, links with cards, images."""

from __future__ import annotations

import httpx
import trio

from tests.posting.world import POST, World

CREATE = "social.coves.community.post.create"


async def test_signed_in_user_posts_text_readable_at_once(world: World) -> None:
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.community(alice)
        status, body = await world.call(
            CREATE,
            {"community": community.did, "title": "Hello", "content": "First post \U0001f44b"},
            as_=alice,
        )
        assert status == 200, body
        uri, cid = body["uri"], body["cid"]
        assert uri.startswith(f"at://{community.did}/{POST}/")
        # In the community's repo on the PDS, with the poster as author.
        stored = await world.record(uri)
        assert stored["status"] == 200 and stored["cid"] == cid
        assert stored["value"]["author"] == alice.did
        assert stored["value"]["community"] == community.did
        # Readable through Coves the moment the call returned (no stream involved).
        status, got = await world.client.get("social.coves.community.post.get", {"uris": uri})
        assert status == 200, got
        [view] = got["posts"]
        assert view["cid"] == cid and view["title"] == "Hello"
        assert view["author"]["did"] == alice.did
        status, feed = await world.client.get(
            "social.coves.feed.getCommunity", {"community": community.did, "sort": "new"}
        )
        assert [item["post"]["uri"] for item in feed["feed"]] == [uri]


ARTICLE = b"""<!doctype html><html><head>
<title>ignored</title>
<meta property="og:title" content="Structured concurrency, explained">
<meta property="og:description" content="Nurseries all the way down.">
<meta property="og:image" content="/cover.png">
<meta property="og:type" content="article">
</head><body>...</body></html>"""


async def test_link_post_gets_a_card_and_thumbnail_from_the_page(world: World) -> None:
    from tests.support.http_server import Reply
    from tests.support.images import make_image

    cover = make_image("PNG", (120, 60))
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.community(alice)
        page = world.srv.route("blog.example.test", "/trio", Reply(body=ARTICLE))
        world.srv.route(
            "blog.example.test", "/cover.png", Reply(body=cover, content_type="image/png")
        )
        status, body = await world.call(
            CREATE,
            {
                "community": community.did,
                "title": "Worth a read",
                "embed": {"$type": "social.coves.embed.external", "external": {"uri": page}},
            },
            as_=alice,
        )
        assert status == 200, body
        stored = (await world.record(body["uri"]))["value"]
        external = stored["embed"]["external"]
        assert external["uri"] == page
        assert external["title"] == "Structured concurrency, explained"
        assert external["description"] == "Nurseries all the way down."
        assert (external["embedType"], external["provider"]) == ("article", "opengraph")
        assert external["domain"] == "blog.example.test"
        thumb = external["thumb"]
        assert thumb["mimeType"] == "image/png" and thumb["size"] == len(cover)
        # The thumbnail is a blob of the community's repo: the PDS serves its bytes.
        blob = await world.pds.xrpc(
            "GET",
            "com.atproto.sync.getBlob",
            params={"did": community.did, "cid": thumb["ref"]["$link"]},
        )
        assert blob.status_code == 200 and blob.content == cover
        # The view carries the thumbnail as a URL serving the same bytes.
        status, got = await world.client.get(
            "social.coves.community.post.get", {"uris": body["uri"]}
        )
        view_external = got["posts"][0]["embed"]["external"]
        assert isinstance(view_external["thumb"], str)
        async with httpx.AsyncClient() as http:
            served = await http.get(view_external["thumb"])
        assert served.content == cover


async def test_two_images_with_alt_text_served_by_the_pds_and_shown_in_the_feed(
    world: World,
) -> None:
    from tests.support.images import make_image

    first, second = make_image("JPEG", (800, 600)), make_image("WEBP", (300, 900))
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.community(alice)
        refs = []
        for data, declared in ((first, "image/jpeg"), (second, "application/octet-stream")):
            status, body = await world.upload(community.did, data, as_=alice, content_type=declared)
            assert status == 200, body
            refs.append(body)
        assert refs[0]["aspectRatio"] == {"width": 800, "height": 600}
        assert refs[1]["blob"]["mimeType"] == "image/webp"  # sniffed, not declared
        images = [
            {"image": refs[0]["blob"], "alt": "a wide one", "aspectRatio": refs[0]["aspectRatio"]},
            {"image": refs[1]["blob"], "alt": "a tall one", "aspectRatio": refs[1]["aspectRatio"]},
        ]
        status, body = await world.call(
            CREATE,
            {
                "community": community.did,
                "title": "Two pictures",
                "embed": {"$type": "social.coves.embed.images", "images": images},
            },
            as_=alice,
        )
        assert status == 200, body
        for ref, data in zip(refs, (first, second), strict=True):
            blob = await world.pds.xrpc(
                "GET",
                "com.atproto.sync.getBlob",
                params={"did": community.did, "cid": ref["blob"]["ref"]["$link"]},
            )
            assert blob.status_code == 200 and blob.content == data
        status, feed = await world.client.get(
            "social.coves.feed.getCommunity", {"community": community.did, "sort": "new"}
        )
        [item] = feed["feed"]
        text = str(item["post"]["embed"])
        async with httpx.AsyncClient() as http:
            for ref, data in zip(refs, (first, second), strict=True):
                cid = ref["blob"]["ref"]["$link"]
                assert cid in text
                urls = [
                    u for u in _strings(item["post"]["embed"]) if cid in u and u.startswith("http")
                ]
                assert urls, text
                served = await http.get(urls[0])
                assert served.content == data


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


async def test_user_signed_in_through_coves_posts_with_the_sealed_session(world: World) -> None:
    """The clients' way: sign in through Coves (OAuth with the PDS), then call
    post.create with the sealed session token as the Bearer token."""
    with trio.fail_after(90):
        alice = await world.user()
        community = await world.community(alice)
        token = await world.sign_in(alice)
        status, body = await world.client.post(
            CREATE, {"community": community.did, "title": "via my session"}, token=token
        )
        assert status == 200, body
        assert (await world.record(body["uri"]))["value"]["author"] == alice.did
        # The same session edits and deletes it.
        status, body2 = await world.client.post(
            "social.coves.community.post.update",
            {"uri": body["uri"], "title": "edited via my session"},
            token=token,
        )
        assert status == 200, body2
        status, gone = await world.client.post(
            "social.coves.community.post.delete", {"uri": body["uri"]}, token=token
        )
        assert (status, gone) == (200, {})
