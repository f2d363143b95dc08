"""A client of the real ``coves serve`` over HTTP, as the apps and bots call it.

Anonymous, as a user signed in through Coves' OAuth (the session token the
mobile app gets), or with a service-auth token the user's own PDS signs (how
bots and scripts call it). Every read asserts a 200; procedures return the
answer (or, with ``expect``, the status and error body).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import trio

from coves.db import Database
from tests.e2e.coves_process import CovesProcess, HttpCoves
from tests.e2e.helpers import INSTANCE_DID, PdsError, eventually
from tests.support.oauth_browser import Browser
from tests.support.pds import PdsAccount, TestPds


def coves_for_users(server_dir: Path, pds: TestPds, db: Database, **extra: str) -> CovesProcess:
    """``coves serve`` as users meet it on this PDS: it hosts communities there (and
    signs users up, minting invite codes), signs users in with OAuth as a loopback
    client, resolves the PDS's handles through it (DEV_HANDLE_DOMAINS) and lets one
    client read after every step without rate limits."""
    coves = CovesProcess(
        server_dir,
        DATABASE_URL=db.conninfo,
        PLC_DIRECTORY_URL=pds.plc_url,
        ALLOW_PRIVATE_NETWORK_FETCH="true",  # the PDS, the PLC, linked pages: loopback
        DEV_HANDLE_DOMAINS=f".{pds.handle_domain}",
        INSTANCE_DID=INSTANCE_DID,
        SKIP_DID_WEB_VERIFICATION="true",
        PDS_URL=pds.url,
        PDS_ADMIN_PASSWORD=pds.admin_password,
        RATE_LIMIT_GENERAL="100000",
        RATE_LIMIT_COMMENTS="100000",
        RATE_LIMIT_USER_WRITES="100000",
        **extra,
    )
    coves.env["APPVIEW_PUBLIC_URL"] = coves.base  # a loopback OAuth client (development)
    return coves


class Client:
    def __init__(self, pds: TestPds, base: str, *, fresh_connections: bool = False) -> None:
        self.pds = pds
        self.base = base
        self.sessions: dict[str, str] = {}  # DID -> Coves session token
        # A new connection per request: with several API workers, requests spread
        # over them (a kept-alive connection stays with one worker).
        self.limits = httpx.Limits(max_keepalive_connections=0 if fresh_connections else 20)

    def http(self, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=timeout, limits=self.limits)

    async def sign_up(self) -> PdsAccount:
        """``social.coves.actor.signup``; then the user's own PDS session (account-level
        actions such as a handle change or deactivation are the PDS's, not Coves')."""
        name = self.pds.unique_name("j")
        handle = f"{name}.{self.pds.handle_domain}"
        password = secrets.token_urlsafe(18)
        async with self.http() as client:
            resp = await client.post(
                "/xrpc/social.coves.actor.signup",
                json={"handle": handle, "email": f"{name}@example.com", "password": password},
            )
        assert resp.status_code == 200, resp.text
        created = resp.json()
        assert created["handle"] == handle and "accessJwt" not in created
        session = await self.pds.xrpc(
            "POST",
            "com.atproto.server.createSession",
            json={"identifier": created["did"], "password": password},
        )
        assert session.status_code == 200, session.text
        tokens = session.json()
        return PdsAccount(
            did=created["did"],
            handle=handle,
            email=f"{name}@example.com",
            password=password,
            access_jwt=tokens["accessJwt"],
            refresh_jwt=tokens["refreshJwt"],
        )

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

    async def _auth(self, viewer: PdsAccount | None, nsid: str) -> dict[str, str]:
        if viewer is None:
            return {}
        if viewer.did in self.sessions:
            return {"Authorization": f"Bearer {self.sessions[viewer.did]}"}
        resp = await self.pds.xrpc(
            "GET",
            "com.atproto.server.getServiceAuth",
            token=viewer.access_jwt,
            params={"aud": INSTANCE_DID, "lxm": nsid},
        )
        if resp.status_code != 200:
            raise PdsError(f"getServiceAuth: {resp.status_code} {resp.text}")
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    async def get(
        self, nsid: str, params: dict[str, Any], viewer: PdsAccount | None = None
    ) -> dict[str, Any]:
        status, body = await self.get_status(nsid, params, viewer)
        assert status == 200, f"{nsid} {params}: {status} {body}"
        return body

    async def get_status(
        self, nsid: str, params: dict[str, Any], viewer: PdsAccount | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = await self._auth(viewer, nsid)
        async with self.http(20.0) as client:
            resp = await client.get(f"/xrpc/{nsid}", params=params, headers=headers)
        body: dict[str, Any] = resp.json()
        return resp.status_code, body

    async def call(self, nsid: str, body: dict[str, Any], viewer: PdsAccount) -> dict[str, Any]:
        """A procedure as the user (Coves writes into the user's or the community's repo)."""
        headers = await self._auth(viewer, nsid)
        async with self.http() as client:
            resp = await client.post(f"/xrpc/{nsid}", json=body, headers=headers)
        assert resp.status_code == 200, f"{nsid} {body}: {resp.status_code} {resp.text}"
        answer: dict[str, Any] = resp.json()
        return answer

    async def upload_image(
        self, community: str, data: bytes, viewer: PdsAccount, content_type: str = "image/png"
    ) -> dict[str, Any]:
        """``post.uploadImage``: the image stored in the community's repository."""
        nsid = "social.coves.community.post.uploadImage"
        headers = {**await self._auth(viewer, nsid), "Content-Type": content_type}
        async with self.http() as client:
            resp = await client.post(
                f"/xrpc/{nsid}", params={"community": community}, content=data, headers=headers
            )
        assert resp.status_code == 200, f"{nsid}: {resp.status_code} {resp.text}"
        answer: dict[str, Any] = resp.json()
        return answer

    async def post(
        self, uri: str, viewer: PdsAccount | None = None, *, kind: str = "postView"
    ) -> dict[str, Any]:
        answer = await self.get("social.coves.community.post.get", {"uris": uri}, viewer)
        [view] = answer["posts"]
        assert view["$type"].endswith(f"#{kind}"), view
        return view

    async def feed(self, community: str, viewer: PdsAccount | None = None) -> list[str]:
        body = await self.get(
            "social.coves.feed.getCommunity", {"community": community, "sort": "new"}, viewer
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
