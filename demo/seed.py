"""Seed the demo's PDS: accounts, profiles and every record, in the accounts' own repos.

Nothing is written to Coves directly: each record is created in its
repository on the PDS (profiles and comments and votes in the people's,
community profiles and posts in the communities'), exactly as clients and
Coves itself write them, and Coves indexes them from the PDS's firehose.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from demo.content import COMMUNITIES, PEOPLE, POSTS, SUBSCRIPTIONS, Community, Seeded
from demo.png import gradient
from tests.support.pds import PdsAccount, TestPds

PROFILE = "social.coves.actor.profile"
COMMUNITY_PROFILE = "social.coves.community.profile"
POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
SUBSCRIPTION = "social.coves.community.subscription"


class SeedError(RuntimeError):
    pass


def _when(hours_ago: float) -> str:
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def _call(pds: TestPds, nsid: str, account: PdsAccount, **kw: Any) -> dict[str, Any]:
    response = await pds.xrpc("POST", nsid, token=account.access_jwt, **kw)
    if response.status_code != 200:
        raise SeedError(f"{nsid} as {account.handle}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def _blob(pds: TestPds, account: PdsAccount, png: bytes) -> dict[str, Any]:
    body = await _call(
        pds,
        "com.atproto.repo.uploadBlob",
        account,
        content=png,
        headers={"Content-Type": "image/png"},
    )
    blob: dict[str, Any] = body["blob"]
    return blob


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


async def seed(pds: TestPds, instance_did: str, password: str) -> Seeded:
    """Create the demo's accounts and content; every person gets ``password``."""
    out = Seeded()
    people: dict[str, PdsAccount] = {}
    for person in PEOPLE:
        account = await pds.create_account(person.name, password=password)
        people[person.name] = account
        out.passwords[account.handle] = password
        out.dids[account.handle] = account.did
        avatar = await _blob(pds, account, gradient(96, 96, person.color, (30, 30, 40)))
        await _create(
            pds,
            account,
            PROFILE,
            {
                "displayName": person.display,
                "description": person.bio,
                "avatar": avatar,
                "createdAt": _when(72),
            },
            rkey="self",
        )

    communities: dict[str, PdsAccount] = {}
    for community in COMMUNITIES:
        communities[community.name] = await _community(pds, community, instance_did, people, out)

    for name, subscribed in SUBSCRIPTIONS.items():
        for community_name in subscribed:
            await _create(
                pds,
                people[name],
                SUBSCRIPTION,
                {
                    "subject": communities[community_name].did,
                    "contentVisibility": 3,
                    "createdAt": _when(48),
                },
            )

    for post in POSTS:
        community = communities[post.community]
        author = people[post.author]
        record: dict[str, Any] = {
            "community": community.did,
            "author": author.did,
            "title": post.title,
            "content": post.content,
            "langs": ["en"],
            "createdAt": _when(post.hours_ago),
        }
        if post.images:
            pictures = []
            for i in range(post.images):
                shade = tuple(min(255, c + 30 * i) for c in (90, 120, 160))
                png = gradient(320, 200, shade, (250, 240, 220))  # type: ignore[arg-type]
                pictures.append(
                    {
                        "image": await _blob(pds, community, png),
                        "alt": f"{post.title} (picture {i + 1})",
                        "aspectRatio": {"width": 320, "height": 200},
                    }
                )
            record["embed"] = {"$type": "social.coves.embed.images", "images": pictures}
            out.images += len(pictures)
        elif post.link is not None:
            url, title, description = post.link
            thumb = await _blob(pds, community, gradient(160, 90, (200, 200, 210), (90, 90, 110)))
            record["embed"] = {
                "$type": "social.coves.embed.external",
                "external": {
                    "uri": url,
                    "title": title,
                    "description": description,
                    "thumb": thumb,
                    "domain": url.split("/")[2],
                    "embedType": "article",
                },
            }
            out.links += 1
        uri, cid = await _create(pds, community, POST, record)
        out.posts.append(uri)
        root = {"uri": uri, "cid": cid}
        for comment in post.comments:
            await _comments(
                pds,
                people=people,
                root=root,
                parent=root,
                tree=comment,
                hours_ago=post.hours_ago,
                out=out,
            )
        for voter, direction in [(v, "up") for v in post.upvoters] + [
            (v, "down") for v in post.downvoters
        ]:
            await _create(
                pds,
                people[voter],
                VOTE,
                {"subject": root, "direction": direction, "createdAt": _when(post.hours_ago / 2)},
            )
            out.votes += 1
            out.post_votes += 1
    return out


async def _community(
    pds: TestPds,
    community: Community,
    instance_did: str,
    people: dict[str, PdsAccount],
    out: Seeded,
) -> PdsAccount:
    """An account of its own on the PDS (handle c-<name>), with its profile record."""
    account = await pds.create_account(f"c-{community.name}")
    out.communities[community.name] = account.did
    avatar = await _blob(pds, account, gradient(128, 128, community.color, (240, 240, 240)))
    banner = await _blob(pds, account, gradient(600, 150, community.color, (20, 20, 30)))
    record: dict[str, Any] = {
        "name": community.name,
        "handle": account.handle,
        "displayName": community.display,
        "description": community.description,
        "avatar": avatar,
        "banner": banner,
        "createdBy": people[PEOPLE[0].name].did,
        "hostedBy": instance_did,
        "visibility": "public",
        "federation": {"allowExternalDiscovery": True},
        "createdAt": _when(96),
    }
    if community.rules:
        record["rules"] = list(community.rules)
    await _create(pds, account, COMMUNITY_PROFILE, record, rkey="self")
    return account


async def _comments(
    pds: TestPds,
    *,
    people: dict[str, PdsAccount],
    root: dict[str, str],
    parent: dict[str, str],
    tree: tuple[str, str, tuple[object, ...]],
    hours_ago: float,
    out: Seeded,
) -> None:
    author, text, replies = tree
    hours_ago = max(0.1, hours_ago * 0.8)
    uri, cid = await _create(
        pds,
        people[author],
        COMMENT,
        {
            "reply": {"root": root, "parent": parent},
            "content": text,
            "langs": ["en"],
            "createdAt": _when(hours_ago),
        },
    )
    out.comments += 1
    me = {"uri": uri, "cid": cid}
    if out.comments % 2:  # some comments get votes too
        await _create(
            pds,
            people[PEOPLE[-1].name],
            VOTE,
            {"subject": me, "direction": "up", "createdAt": _when(hours_ago / 2)},
        )
        out.votes += 1
    for reply in replies:
        await _comments(
            pds,
            people=people,
            root=root,
            parent=me,
            tree=reply,
            hours_ago=hours_ago,
            out=out,  # type: ignore[arg-type]
        )
