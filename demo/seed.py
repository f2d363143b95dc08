"""Seed the demo: people on the PDS, then communities and posts through Coves.

Each record is written the way it is in real use. People's own records
(profiles, subscriptions, comments, votes) go into their own repositories on
the PDS, as any atproto client writes them, and Coves indexes them from the
PDS's firehose. Communities and posts go through Coves, as the apps make them:
``community.create`` provisions each community's account on the PDS and keeps
its credentials sealed, and ``post.create`` (pictures uploaded first with
``post.uploadImage``) writes each post into its community's repository with
them. Those calls are signed by the people's own PDS (service auth, as bots and
scripts call Coves).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from demo.content import COMMUNITIES, PEOPLE, POSTS, SUBSCRIPTIONS, Community, Post, Seeded
from demo.png import gradient
from tests.support.pds import PdsAccount, TestPds

PROFILE = "social.coves.actor.profile"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
SUBSCRIPTION = "social.coves.community.subscription"


class SeedError(RuntimeError):
    pass


def _when(hours_ago: float = 0.0) -> str:
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def _call(pds: TestPds, nsid: str, account: PdsAccount, **kw: Any) -> dict[str, Any]:
    response = await pds.xrpc("POST", nsid, token=account.access_jwt, **kw)
    if response.status_code != 200:
        raise SeedError(f"{nsid} as {account.handle}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def _create(
    pds: TestPds,
    account: PdsAccount,
    collection: str,
    record: dict[str, Any],
    rkey: str | None = None,
) -> tuple[str, str]:
    payload: dict[str, Any] = {
        "repo": account.did,
        "collection": collection,
        "record": {"$type": collection, **record},
    }
    if rkey is not None:
        payload["rkey"] = rkey
    body = await _call(pds, "com.atproto.repo.createRecord", account, json=payload)
    return str(body["uri"]), str(body["cid"])


class Coves:
    """Coves' API as a person calls it: each call signed by their PDS for that method."""

    def __init__(self, base: str, pds: TestPds, instance_did: str) -> None:
        self.base = base
        self.pds = pds
        self.instance_did = instance_did

    async def _token(self, account: PdsAccount, nsid: str) -> str:
        response = await self.pds.xrpc(
            "GET",
            "com.atproto.server.getServiceAuth",
            token=account.access_jwt,
            params={"aud": self.instance_did, "lxm": nsid},
        )
        if response.status_code != 200:
            raise SeedError(f"getServiceAuth as {account.handle}: {response.text}")
        return str(response.json()["token"])

    async def call(self, nsid: str, body: dict[str, Any], *, as_: PdsAccount) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await self._token(as_, nsid)}"}
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
            response = await client.post(f"/xrpc/{nsid}", json=body, headers=headers)
        return self._answer(nsid, as_, response)

    async def upload(self, community: str, png: bytes, *, as_: PdsAccount) -> dict[str, Any]:
        """``post.uploadImage``: a picture stored in the community's repository."""
        nsid = "social.coves.community.post.uploadImage"
        headers = {
            "Authorization": f"Bearer {await self._token(as_, nsid)}",
            "Content-Type": "image/png",
        }
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
            response = await client.post(
                f"/xrpc/{nsid}", params={"community": community}, content=png, headers=headers
            )
        return self._answer(nsid, as_, response)

    @staticmethod
    def _answer(nsid: str, account: PdsAccount, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise SeedError(f"{nsid} as {account.handle}: {response.status_code} {response.text}")
        body: dict[str, Any] = response.json()
        return body


async def seed(pds: TestPds, base: str, instance_did: str, password: str) -> Seeded:
    """Create the demo's accounts and content; every person gets ``password``."""
    out = Seeded()
    coves = Coves(base, pds, instance_did)
    people: dict[str, PdsAccount] = {}
    for person in PEOPLE:
        account = await pds.create_account(person.name, password=password)
        people[person.name] = account
        out.passwords[account.handle] = password
        out.dids[account.handle] = account.did
        avatar = await _call(
            pds,
            "com.atproto.repo.uploadBlob",
            account,
            content=gradient(96, 96, person.color, (30, 30, 40)),
            headers={"Content-Type": "image/png"},
        )
        await _create(
            pds,
            account,
            PROFILE,
            {
                "displayName": person.display,
                "description": person.bio,
                "avatar": avatar["blob"],
                "createdAt": _when(72),
            },
            rkey="self",
        )

    founder = people[PEOPLE[0].name]
    for community in COMMUNITIES:
        out.communities[community.name] = await _community(coves, community, founder)

    for name, subscribed in SUBSCRIPTIONS.items():
        for community_name in subscribed:
            await _create(
                pds,
                people[name],
                SUBSCRIPTION,
                {
                    "subject": out.communities[community_name],
                    "contentVisibility": 3,
                    "createdAt": _when(),
                },
            )

    for post in POSTS:
        root = await _post(coves, post, people[post.author], out)
        for comment in post.comments:
            await _comments(pds, people=people, root=root, parent=root, tree=comment, out=out)
        for voter, direction in [(v, "up") for v in post.upvoters] + [
            (v, "down") for v in post.downvoters
        ]:
            await _create(
                pds,
                people[voter],
                VOTE,
                {"subject": root, "direction": direction, "createdAt": _when()},
            )
            out.votes += 1
            out.post_votes += 1
    return out


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode()


async def _community(coves: Coves, community: Community, founder: PdsAccount) -> str:
    """``community.create``: its account on the PDS (handle c-<name>), its profile."""
    body: dict[str, Any] = {
        "name": community.name,
        "displayName": community.display,
        "description": community.description,
        "visibility": "public",
        "allowExternalDiscovery": True,
        "avatarBlob": _b64(gradient(128, 128, community.color, (240, 240, 240))),
        "avatarMimeType": "image/png",
        "bannerBlob": _b64(gradient(600, 150, community.color, (20, 20, 30))),
        "bannerMimeType": "image/png",
    }
    if community.rules:
        body["rules"] = list(community.rules)
    created = await coves.call("social.coves.community.create", body, as_=founder)
    return str(created["did"])


async def _post(coves: Coves, post: Post, author: PdsAccount, out: Seeded) -> dict[str, str]:
    """``post.create`` as its author, pictures and link thumbnails uploaded first."""
    community = out.communities[post.community]
    body: dict[str, Any] = {
        "community": community,
        "title": post.title,
        "content": post.content,
        "langs": ["en"],
    }
    if post.images:
        pictures = []
        for i in range(post.images):
            shade = tuple(min(255, c + 30 * i) for c in (90, 120, 160))
            png = gradient(320, 200, shade, (250, 240, 220))  # type: ignore[arg-type]
            uploaded = await coves.upload(community, png, as_=author)
            pictures.append(
                {
                    "image": uploaded["blob"],
                    "alt": f"{post.title} (picture {i + 1})",
                    "aspectRatio": uploaded["aspectRatio"],
                }
            )
        body["embed"] = {"$type": "social.coves.embed.images", "images": pictures}
        out.images += len(pictures)
    elif post.link is not None:
        url, title, description = post.link
        # A complete card: Coves fetches nothing (the demo may run without a network).
        thumb = await coves.upload(
            community, gradient(160, 90, (200, 200, 210), (90, 90, 110)), as_=author
        )
        body["embed"] = {
            "$type": "social.coves.embed.external",
            "external": {
                "uri": url,
                "title": title,
                "description": description,
                "thumb": thumb["blob"],
                "embedType": "article",
            },
        }
        out.links += 1
    created = await coves.call("social.coves.community.post.create", body, as_=author)
    out.posts.append(created["uri"])
    return {"uri": created["uri"], "cid": created["cid"]}


async def _comments(
    pds: TestPds,
    *,
    people: dict[str, PdsAccount],
    root: dict[str, str],
    parent: dict[str, str],
    tree: tuple[str, str, tuple[object, ...]],
    out: Seeded,
) -> None:
    author, text, replies = tree
    uri, cid = await _create(
        pds,
        people[author],
        COMMENT,
        {
            "reply": {"root": root, "parent": parent},
            "content": text,
            "langs": ["en"],
            "createdAt": _when(),
        },
    )
    out.comments += 1
    me = {"uri": uri, "cid": cid}
    if out.comments % 2:  # some comments get votes too
        await _create(
            pds,
            people[PEOPLE[-1].name],
            VOTE,
            {"subject": me, "direction": "up", "createdAt": _when()},
        )
        out.votes += 1
    for reply in replies:
        await _comments(
            pds,
            people=people,
            root=root,
            parent=me,
            tree=reply,  # type: ignore[arg-type]
            out=out,
        )
