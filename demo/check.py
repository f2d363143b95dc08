"""``scripts/demo --check``: what a newcomer should find, verified through Coves' API.

Communities with handles and pictures, people with profiles, posts with
pictures and link cards whose image URLs really serve images, comment
threads with replies, vote counts; then a person signs in through Coves (the
PDS's own sign-in page, as a browser would), comments through Coves (the
comment shows up in the thread) and creates a community through Coves (its
account provisioned on the PDS, the community served at once).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from demo.content import COMMUNITIES, PEOPLE, POSTS, Seeded
from demo.wait import feed
from tests.support.oauth_browser import Browser
from tests.support.pds import TestPds


class CheckFailed(SystemExit):
    pass


def expect(condition: object, what: str) -> None:
    if not condition:
        raise CheckFailed(f"check failed: {what}")


class _Response:
    """The few things the scripted browser reads from a response."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self._response = response
        self.headers = _Headers(response.headers)

    async def get_data(self) -> bytes:
        return self._response.content


class _Headers:
    def __init__(self, headers: httpx.Headers) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        return self._headers[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, default)

    def getlist(self, name: str) -> list[str]:
        return self._headers.get_list(name)


class _Coves:
    """Coves over real HTTP, shaped like the test client the scripted browser drives."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def get(self, path: str, headers: dict[str, str]) -> _Response:
        return _Response(await self._client.get(path, headers=headers))


async def check(base: str, pds: TestPds, seeded: Seeded, password: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=20, follow_redirects=False) as client:
        await _communities(client, seeded)
        posts = await _posts(client, seeded)
        await _threads(client, posts)
        await _profiles(client, seeded)
        await _sign_in_and_comment(client, seeded, password, posts)


async def _get(client: httpx.AsyncClient, nsid: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/xrpc/{nsid}", params=params)
    expect(response.status_code == 200, f"{nsid} answered {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def _image(client: httpx.AsyncClient, url: Any, what: str) -> None:
    expect(isinstance(url, str) and url.startswith("http"), f"{what} has an image URL")
    async with httpx.AsyncClient(timeout=20) as plain:
        response = await plain.get(url)
    expect(response.status_code == 200, f"{what}: {url} answered {response.status_code}")
    expect(response.content.startswith(b"\x89PNG"), f"{what}: {url} serves the picture")


async def _communities(client: httpx.AsyncClient, seeded: Seeded) -> None:
    listed = (await _get(client, "social.coves.community.list", limit=50))["communities"]
    by_did = {c["did"]: c for c in listed}
    for community in COMMUNITIES:
        view = by_did.get(seeded.communities[community.name])
        expect(view is not None, f"community {community.name} is listed")
        assert view is not None
        expect(view.get("displayName") == community.display, f"{community.name}'s name")
        # c-<name>.coves.test: made by community.create, shown verified (the demo asks
        # its PDS for *.coves.test handles: DEV_HANDLE_DOMAINS).
        expect(
            view.get("handle") == f"c-{community.name}.coves.test",
            f"{community.name}'s handle: {view.get('handle')}",
        )
        expect(view.get("name") == community.name, f"{community.name}'s name")

        await _image(client, view.get("avatar"), f"{community.name}'s avatar")


async def _posts(client: httpx.AsyncClient, seeded: Seeded) -> list[dict[str, Any]]:
    posts = await feed(client)
    expect(len(posts) == len(POSTS), f"{len(POSTS)} posts in the discover feed, got {len(posts)}")
    images = [p for p in posts if p.get("embed", {}).get("$type", "").endswith("images#view")]
    links = [p for p in posts if p.get("embed", {}).get("$type", "").endswith("external#view")]
    expect(len(images) == sum(1 for p in POSTS if p.images), "posts with pictures")
    expect(len(links) == sum(1 for p in POSTS if p.link), "posts with link cards")
    await _image(client, images[0]["embed"]["images"][0].get("fullsize"), "a post's picture")
    card = links[0]["embed"]["external"]
    expect(card.get("title") and card.get("uri", "").startswith("https://"), "a link card")
    await _image(client, card.get("thumb"), "a link card's thumbnail")
    upvotes = sum(p["stats"]["upvotes"] for p in posts)
    expect(upvotes == sum(len(p.upvoters) for p in POSTS), "every upvote counted")
    return posts


async def _threads(client: httpx.AsyncClient, posts: list[dict[str, Any]]) -> None:
    busiest = max(posts, key=lambda p: p["stats"]["commentCount"])
    thread = await _get(
        client, "social.coves.community.comment.getComments", post=busiest["uri"], depth=10
    )
    tops = thread.get("comments", [])
    expect(tops, "the busiest post has a thread")
    expect(any(t.get("replies") for t in tops), "comments have replies")


async def _profiles(client: httpx.AsyncClient, seeded: Seeded) -> None:
    for person in PEOPLE[:2]:
        handle = next(h for h in seeded.dids if h.startswith(f"{person.name}."))
        profile = await _get(client, "social.coves.actor.getProfile", actor=seeded.dids[handle])
        expect(profile.get("displayName") == person.display, f"{person.name}'s profile")
        expect(profile.get("handle") == handle, f"{person.name}'s handle: {profile.get('handle')}")


async def _sign_in_and_comment(
    client: httpx.AsyncClient, seeded: Seeded, password: str, posts: list[dict[str, Any]]
) -> None:
    handle = next(h for h in seeded.dids if h.startswith("alice."))
    did = seeded.dids[handle]
    browser = Browser(_Coves(client))
    path = f"/oauth/mobile/login?handle={quote(did)}&redirect_uri=social.coves:/callback"
    landing = await browser.sign_in(path, handle, password)
    token = landing.query.get("token")
    expect(landing.status == 302 and token, f"signed in ({landing.status} {landing.location})")
    post = posts[0]
    ref = {"uri": post["uri"], "cid": post["cid"]}
    response = await client.post(
        "/xrpc/social.coves.community.comment.create",
        json={"reply": {"root": ref, "parent": ref}, "content": "Hello from the demo check!"},
        headers={"Authorization": f"Bearer {token}"},
    )
    expect(
        response.status_code == 200,
        f"comment through Coves: {response.status_code} {response.text}",
    )
    thread = await _get(client, "social.coves.community.comment.getComments", post=post["uri"])
    texts = [
        c.get("comment", c).get("record", {}).get("content") for c in thread.get("comments", [])
    ]
    expect("Hello from the demo check!" in texts, f"the new comment is in the thread: {texts}")

    # A community created through Coves: its account is provisioned on the PDS.
    created = await client.post(
        "/xrpc/social.coves.community.create",
        json={"name": "newcomers", "displayName": "Newcomers", "description": "Say hello."},
        headers={"Authorization": f"Bearer {token}"},
    )
    expect(created.status_code == 200, f"community.create: {created.status_code} {created.text}")
    body = created.json()
    expect(body["handle"] == "c-newcomers.coves.test", f"the new community's handle: {body}")
    view = await _get(client, "social.coves.community.get", community=body["did"])
    shown = view.get("community", view)
    expect(shown.get("displayName") == "Newcomers", f"the new community is served: {view}")
