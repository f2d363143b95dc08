"""The user journey end to end: the real reference PDS, the real ``coves serve`` reading
its firehose, and after each step the reads a client makes (feeds, threads, counts,
viewer state, profile, post.get) showing exactly what happened.

Steps covered here, each followed by the reads that must reflect it:

 1. two users (accounts on the PDS) sign in to Coves with OAuth,
    through the PDS's own authorization server                → /api/me
 2. the community's profile record is written            → community.get
 3. both users subscribe                                  → community.get counts, viewer state
 4. posts: text, link (external embed), image (blob)      → feed.getCommunity, post.get, timeline
 5. a comment, a nested reply, a reply to that            → getComments (nested), counts
 6. both vote (posts and a comment)                       → stats, viewer.vote (service auth)
 7. one edits a post, one deletes a reply                 → post.get, getComments, counts
 8. one blocks the community                              → community.get viewer, getTimeline
 9. a handle changes                                      → actor.getProfile, author in views
10. an account is deactivated, then reactivated           → feeds hide, then show, its posts

The users read as themselves with the Coves session tokens the sign-in gave them.
Today every write in these steps goes straight to the PDS, as any atproto client
would write it; Coves sees it only through its firehose (signatures verified against
the real PLC). When Coves' own write paths land, the same steps run through them (the
reads and their assertions stay): sign-up (accounts are created on the PDS here),
community creation (pds14), subscribe/block/post/comment/vote procedures (posts16, pds14).
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio

from coves.db import Database
from tests.e2e.coves_process import CovesProcess, HttpCoves
from tests.e2e.helpers import (
    COMMENT,
    CREATED_AT,
    INSTANCE_DID,
    POST,
    PROFILE,
    SUBSCRIPTION,
    VOTE,
    PdsError,
    call,
    comment_record,
    community_profile,
    delete,
    eventually,
    post_record,
    put,
    ref,
    vote_record,
)
from tests.support.oauth_browser import Browser
from tests.support.pds import PdsAccount, TestPds

BLOCK = "social.coves.community.block"


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def server_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="coves-journey-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Client:
    """A client of Coves' XRPC API: anonymous, or as a user signed in through Coves'
    OAuth (its session token), or with a service-auth token the user's PDS signs."""

    def __init__(self, pds: TestPds, base: str) -> None:
        self.pds = pds
        self.base = base
        self.sessions: dict[str, str] = {}  # DID -> Coves session token

    async def sign_in(self, account: PdsAccount) -> str:
        """The mobile sign-in: Coves → the PDS's authorization server → back to the app."""
        browser = Browser(HttpCoves(self.base))
        path = (
            f"/oauth/mobile/login?handle={quote(account.did)}&redirect_uri=social.coves:/callback"
        )
        landing = await browser.sign_in(path, account.handle, account.password)
        assert landing.status == 302 and landing.location.startswith("social.coves:/callback?")
        assert landing.query["did"] == account.did
        self.sessions[account.did] = landing.query["token"]
        return landing.query["token"]

    async def get(
        self, nsid: str, params: dict[str, Any], viewer: PdsAccount | None = None
    ) -> dict[str, Any]:
        headers = {}
        if viewer is not None and viewer.did in self.sessions:
            headers["Authorization"] = f"Bearer {self.sessions[viewer.did]}"
        elif viewer is not None:
            resp = await self.pds.xrpc(
                "GET",
                "com.atproto.server.getServiceAuth",
                token=viewer.access_jwt,
                params={"aud": INSTANCE_DID, "lxm": nsid},
            )
            if resp.status_code != 200:
                raise PdsError(f"getServiceAuth: {resp.status_code} {resp.text}")
            headers["Authorization"] = f"Bearer {resp.json()['token']}"
        async with httpx.AsyncClient(base_url=self.base, timeout=20.0) as client:
            resp = await client.get(f"/xrpc/{nsid}", params=params, headers=headers)
        assert resp.status_code == 200, f"{nsid} {params}: {resp.status_code} {resp.text}"
        body: dict[str, Any] = resp.json()
        return body

    async def post(self, uri: str, viewer: PdsAccount | None = None) -> dict[str, Any]:
        [view] = (await self.get("social.coves.community.post.get", {"uris": uri}, viewer))["posts"]
        return view

    async def feed(self, community: str) -> list[str]:
        body = await self.get(
            "social.coves.feed.getCommunity", {"community": community, "sort": "new"}
        )
        return [item["post"]["uri"] for item in body["feed"]]


def thread_shape(comments: list[dict[str, Any]]) -> list[Any]:
    """[(content or None for a placeholder, [replies...])] of a getComments answer."""
    out = []
    for node in comments:
        comment = node["comment"]
        out.append((comment.get("content"), thread_shape(node.get("replies") or [])))
    return out


async def until(check: Any, timeout: float = 30.0) -> None:
    """Until ``check()`` returns without an AssertionError (the index is asynchronous)."""
    last: AssertionError | None = None

    async def attempt() -> bool:
        nonlocal last
        try:
            await check()
        except AssertionError as exc:
            last = exc
            return False
        return True

    try:
        await eventually(attempt, timeout=timeout, poll=0.2)
    except trio.TooSlowError:
        raise AssertionError(f"never held: {last}") from last


async def test_the_journey(pds: TestPds, db: Database, server_dir: Path) -> None:
    coves = CovesProcess(
        server_dir,
        DATABASE_URL=db.conninfo,
        FIREHOSE_URL=f"ws://127.0.0.1:{pds.port}",
        FIREHOSE_VERIFY="true",
        PLC_DIRECTORY_URL=pds.plc_url,
        ALLOW_PRIVATE_NETWORK_FETCH="true",
        INSTANCE_DID=INSTANCE_DID,
        SKIP_DID_WEB_VERIFICATION="true",
        JETSTREAM_BATCH_MS="20",
        PDS_URL=pds.url,
        # one client polls the reads after every step
        RATE_LIMIT_GENERAL="100000",
        RATE_LIMIT_COMMENTS="100000",
    )
    coves.env["APPVIEW_PUBLIC_URL"] = coves.base  # a loopback OAuth client (development)
    try:
        with trio.fail_after(300):
            await coves.start()
            api = Client(pds, coves.base)

            # 1. accounts on the PDS; both users sign in to Coves with OAuth
            community = await pds.create_account()
            alice = await pds.create_account()
            bob = await pds.create_account()
            for user in (alice, bob):
                token = await api.sign_in(user)
                async with httpx.AsyncClient(base_url=coves.base, timeout=20.0) as http:
                    me = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
                assert me.json()["did"] == user.did

            # 2. the community
            await put(pds, community, PROFILE, "self", community_profile(community, alice.did))

            async def community_exists() -> None:
                view = await api.get("social.coves.community.get", {"community": community.did})
                assert view["did"] == community.did and view["createdByDid"] == alice.did
                assert (view["subscriberCount"], view["postCount"]) == (0, 0)

            await until(community_exists)

            # 3. both subscribe
            for user in (alice, bob):
                await put(
                    pds,
                    user,
                    SUBSCRIPTION,
                    "3ksub00000001",
                    {"subject": community.did, "createdAt": CREATED_AT},
                )

            async def subscribed() -> None:
                view = await api.get(
                    "social.coves.community.get", {"community": community.did}, alice
                )
                assert view["subscriberCount"] == 2
                assert view["viewer"]["subscribed"] is True

            await until(subscribed)

            # 4. posts: text, link, image
            text = await put(
                pds,
                community,
                POST,
                "3kpost0000001",
                post_record(community.did, alice.did, "Text post"),
            )
            link = await put(
                pds,
                community,
                POST,
                "3kpost0000002",
                {
                    **post_record(community.did, bob.did, "Link post"),
                    "embed": {
                        "$type": "social.coves.embed.external",
                        "external": {"uri": "https://example.com/article", "title": "Article"},
                    },
                },
            )
            upload = await pds.xrpc(
                "POST",
                "com.atproto.repo.uploadBlob",
                token=community.access_jwt,
                content=tiny_png(),
                headers={"Content-Type": "image/png"},
            )
            assert upload.status_code == 200, upload.text
            blob = upload.json()["blob"]
            image = await put(
                pds,
                community,
                POST,
                "3kpost0000003",
                {
                    **post_record(community.did, alice.did, "Image post"),
                    "embed": {
                        "$type": "social.coves.embed.images",
                        "images": [{"image": blob, "alt": "a green pixel"}],
                    },
                },
            )

            async def posted() -> None:
                assert await api.feed(community.did) == [image["uri"], link["uri"], text["uri"]]
                view = await api.post(link["uri"])
                assert view["title"] == "Link post" and view["author"]["did"] == bob.did
                assert "https://example.com/article" in str(view.get("embed"))
                pic = await api.post(image["uri"])
                assert blob["ref"]["$link"] in str(pic.get("embed"))
                timeline = await api.get("social.coves.feed.getTimeline", {"sort": "new"}, bob)
                assert len(timeline["feed"]) == 3
                view = await api.get("social.coves.community.get", {"community": community.did})
                assert view["postCount"] == 3

            await until(posted)

            # 5. comments, nested
            root = ref(text["uri"], text["cid"])
            first = await put(pds, bob, COMMENT, "3kcomm0000001", comment_record(root, root, "1"))
            second = await put(
                pds,
                alice,
                COMMENT,
                "3kcomm0000002",
                comment_record(root, ref(first["uri"], first["cid"]), "1.1"),
            )
            await put(
                pds,
                bob,
                COMMENT,
                "3kcomm0000003",
                comment_record(root, ref(second["uri"], second["cid"]), "1.1.1"),
            )

            async def threaded() -> None:
                thread = await api.get(
                    "social.coves.community.comment.getComments", {"post": text["uri"]}
                )
                assert thread_shape(thread["comments"]) == [("1", [("1.1", [("1.1.1", [])])])]
                assert (await api.post(text["uri"]))["stats"]["commentCount"] == 3

            await until(threaded)

            # 6. votes
            await put(
                pds, alice, VOTE, "3kvote0000001", vote_record(ref(link["uri"], link["cid"]), "up")
            )
            await put(pds, bob, VOTE, "3kvote0000002", vote_record(root, "down"))
            await put(
                pds,
                alice,
                VOTE,
                "3kvote0000003",
                vote_record(ref(first["uri"], first["cid"]), "up"),
            )

            async def voted() -> None:
                linked = await api.post(link["uri"], alice)
                assert linked["stats"]["upvotes"] == 1 and linked["viewer"]["vote"] == "up"
                texted = await api.post(text["uri"], bob)
                assert texted["stats"]["downvotes"] == 1 and texted["viewer"]["vote"] == "down"
                assert (await api.post(text["uri"], alice)).get("viewer", {}).get("vote") is None
                thread = await api.get(
                    "social.coves.community.comment.getComments", {"post": text["uri"]}
                )
                assert thread["comments"][0]["comment"]["stats"]["upvotes"] == 1

            await until(voted)

            # 7. an edit and a delete
            await put(
                pds,
                community,
                POST,
                "3kpost0000001",
                post_record(community.did, alice.did, "Text post (edited)"),
            )
            await delete(pds, bob, COMMENT, "3kcomm0000003")

            async def edited() -> None:
                view = await api.post(text["uri"])
                assert view["title"] == "Text post (edited)"
                assert view["stats"]["commentCount"] == 2
                thread = await api.get(
                    "social.coves.community.comment.getComments", {"post": text["uri"]}
                )
                shape = thread_shape(thread["comments"])
                assert shape[0][0] == "1" and shape[0][1][0][0] == "1.1"
                assert all(reply[0] != "1.1.1" for reply in shape[0][1][0][1])

            await until(edited)

            # 8. bob blocks the community
            await put(
                pds,
                bob,
                BLOCK,
                "3kblock000001",
                {"subject": community.did, "createdAt": CREATED_AT},
            )

            async def blocked() -> None:
                view = await api.get(
                    "social.coves.community.get", {"community": community.did}, bob
                )
                assert view["viewer"]["blocked"] is True
                timeline = await api.get("social.coves.feed.getTimeline", {"sort": "new"}, bob)
                assert timeline["feed"] == []
                still = await api.get("social.coves.feed.getTimeline", {"sort": "new"}, alice)
                assert len(still["feed"]) == 3

            await until(blocked)

            # 9. a handle changes
            new_handle = f"n{bob.handle.split('.')[0][-10:]}.{pds.handle_domain}"
            await call(pds, bob, "com.atproto.identity.updateHandle", {"handle": new_handle})

            async def renamed() -> None:
                profile = await api.get("social.coves.actor.getProfile", {"actor": bob.did})
                assert profile["handle"] == new_handle
                assert (await api.post(link["uri"]))["author"]["handle"] == new_handle

            await until(renamed)

            # 10. alice's account is deactivated, then reactivated
            await call(pds, alice, "com.atproto.server.deactivateAccount", {})

            async def hidden() -> None:
                assert await api.feed(community.did) == [link["uri"]]

            await until(hidden)
            await call(pds, alice, "com.atproto.server.activateAccount")

            async def back() -> None:
                assert await api.feed(community.did) == [image["uri"], link["uri"], text["uri"]]

            await until(back)

            dead = await db.fetch("SELECT reason, detail FROM dead_letters")
            assert dead == []
    except BaseException:
        print(coves.log()[-6000:])
        raise
    finally:
        coves.stop_quietly()
