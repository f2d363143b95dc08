"""An aggregator from registration to refusal, against the reference PDS:
registers with its domain, gets an API key, is enabled by the community's
creator, posts with its key (the way the bots do), hits the hourly limit, is
disabled and refused."""

from __future__ import annotations

import trio

from coves.pds import BearerAuth
from tests.posting.world import World
from tests.support.http_server import Reply
from tests.support.images import make_image

CREATE = "social.coves.community.post.create"
SERVICE = "social.coves.aggregator.service"
AUTHORIZATION = "social.coves.aggregator.authorization"


async def test_aggregator_story(world: World) -> None:
    with trio.fail_after(120):
        creator, stranger, bot = await world.user(), await world.user(), await world.user()
        community = await world.community(creator)
        # 1. Register: the bot's domain (its handle here) serves its DID.
        world.srv.route(bot.handle, "/.well-known/atproto-did", Reply(body=bot.did.encode()))
        status, body = await world.client.post(
            "social.coves.aggregator.register", {"did": bot.did, "domain": bot.handle}
        )
        assert status == 200, body
        # 2. Its service record, written to its own repo (indexed as the stream would).
        await world.ctx.pds.writer.put(
            world.ctx.pds.instance,
            BearerAuth(bot.access_jwt),
            repo=bot.did,
            collection=SERVICE,
            rkey="self",
            record={
                "$type": SERVICE,
                "did": bot.did,
                "displayName": "News Bot",
                "createdAt": "2025-01-01T00:00:00Z",
            },
            operation="create",
        )
        # 3. Signed in as itself, it creates an API key.
        status, created = await world.call("social.coves.aggregator.createApiKey", None, as_=bot)
        assert status == 200, created
        key = created["key"]
        post = {"community": community.handle, "title": "Headline", "content": "Body"}
        # 4. Not enabled in the community yet.
        status, body = await world.client.post(CREATE, post, token=key)
        assert (status, body["error"]) == (403, "NotAuthorized")
        # 5. Only the community's creator may enable it.
        enable = {"community": community.did, "aggregatorDid": bot.did, "config": {"feeds": 2}}
        status, body = await world.call("social.coves.aggregator.enable", enable, as_=stranger)
        assert (status, body["error"]) == (403, "NotAuthorized")
        status, enabled = await world.call("social.coves.aggregator.enable", enable, as_=creator)
        assert status == 200 and enabled["enabled"] is True, enabled
        record = (await world.record(enabled["uri"]))["value"]
        assert record["aggregatorDid"] == bot.did and record["communityDid"] == community.did
        assert record["enabled"] is True and record["createdBy"] == creator.did
        status, listed = await world.client.get(
            "social.coves.aggregator.listForCommunity", {"community": community.did}
        )
        assert [(a["aggregatorDid"], a["enabled"]) for a in listed["aggregators"]] == [
            (bot.did, True)
        ]
        # 6. It posts with its key, the way the bots do (handle, card, thumbnailUrl).
        thumb = make_image("JPEG", (64, 64))
        world.srv.route("img.example.test", "/t.jpg", Reply(body=thumb, content_type="image/jpeg"))
        status, body = await world.client.post(
            CREATE,
            {
                **post,
                "embed": {
                    "$type": "social.coves.embed.external",
                    "external": {
                        "uri": "https://news.example.test/story/1",
                        "title": "Story",
                        "description": "What happened",
                        "embedType": "article",
                        "provider": "kagi",
                    },
                },
                "thumbnailUrl": world.srv.url("img.example.test", "/t.jpg"),
            },
            token=key,
        )
        assert status == 200, body
        stored = (await world.record(body["uri"]))["value"]
        assert stored["author"] == bot.did
        assert stored["embed"]["external"]["thumb"]["size"] == len(thumb)
        assert stored["embed"]["external"]["provider"] == "kagi"  # the bot's own value stays
        # 7. Ten an hour in one community, then 429.
        for i in range(9):
            status, body = await world.client.post(
                CREATE, {**post, "title": f"Headline {i}"}, token=key
            )
            assert status == 200, (i, body)
        status, body = await world.client.post(CREATE, {**post, "title": "one too many"}, token=key)
        assert (status, body["error"]) == (429, "RateLimitExceeded")
        # The key authenticates nothing else of the bot's.
        status, body = await world.client.post("social.coves.aggregator.enable", enable, token=key)
        assert status == 401
        # 8. Disabled by the creator: the record stays, marked, and posting is refused.
        status, disabled = await world.call(
            "social.coves.aggregator.disable",
            {"community": community.did, "aggregatorDid": bot.did},
            as_=creator,
        )
        assert status == 200 and disabled["enabled"] is False, disabled
        assert disabled["uri"] == enabled["uri"]
        record = (await world.record(disabled["uri"]))["value"]
        assert record["enabled"] is False and record["disabledBy"] == creator.did
        assert record["config"] == {"feeds": 2}
        await world.db.execute("DELETE FROM post_submissions")  # the hour has passed
        status, body = await world.client.post(CREATE, post, token=key)
        assert (status, body["error"]) == (403, "NotAuthorized")
        status, auths = await world.client.get(
            "social.coves.aggregator.getAuthorizations", {"aggregatorDid": bot.did}
        )
        assert [(a["communityDid"], a["enabled"]) for a in auths["authorizations"]] == [
            (community.did, False)
        ]
