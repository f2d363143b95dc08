"""A signed-in user on the reference PDS, and an indexed community and post to act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from coves import clock
from coves.atproto.syntax import format_datetime
from tests.oauth.live import Live
from tests.support.events import cid, community_record, post_record, tid
from tests.support.pds import PdsAccount


@dataclass
class SignedIn:
    live: Live
    account: PdsAccount
    token: str
    session_id: str

    @property
    def did(self) -> str:
        return self.account.did

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, nsid: str, body: Any) -> Any:
        with trio.fail_after(30):
            return await self.live.app.test_client().post(
                f"/xrpc/{nsid}", headers=self.headers(), json=body
            )

    async def query(self, nsid: str, **params: Any) -> Any:
        with trio.fail_after(30):
            return await self.live.app.test_client().get(
                f"/xrpc/{nsid}", headers=self.headers(), query_string=params
            )

    async def pds_record(self, uri: str) -> Any:
        """What the PDS itself holds (com.atproto.repo.getRecord), or None."""
        repo, collection, rkey = uri.removeprefix("at://").split("/")
        response = await self.live.pds.xrpc(
            "GET",
            "com.atproto.repo.getRecord",
            params={"repo": repo, "collection": collection, "rkey": rkey},
        )
        if response.status_code == 400 and response.json().get("error") == "RecordNotFound":
            return None
        assert response.status_code == 200, response.text
        return response.json()

    async def pds_records(self, collection: str) -> list[Any]:
        """Every record of ``collection`` the PDS holds in this user's repository
        (com.atproto.repo.listRecords): what a refused write must not have added."""
        response = await self.live.pds.xrpc(
            "GET",
            "com.atproto.repo.listRecords",
            params={"repo": self.did, "collection": collection, "limit": 100},
        )
        assert response.status_code == 200, response.text
        records: list[Any] = response.json()["records"]
        return records


async def sign_in(live: Live) -> SignedIn:
    account = await live.account()
    with trio.fail_after(60):
        landing = await live.sign_in_mobile(account)
    query = landing.query
    assert query.get("did") == account.did, landing.location
    return SignedIn(live, account, query["token"], query["session_id"])


_counter = iter(range(1, 1_000_000))


async def seed_post(live: Live, *, visibility: str = "public") -> tuple[str, str, str]:
    """An indexed community (hosted here) and a post in it: (community DID, post URI, CID)."""
    n = next(_counter)
    community = f"did:plc:seedcomm{n:016d}"
    author = f"did:plc:seedauth{n:016d}"
    writer = live.ctx.pds.writer
    now_us = int(clock.wall_now() * 1_000_000)
    record = community_record(
        f"seed{n}", live.ctx.settings.instance_did, author, visibility=visibility
    )
    assert await writer.index(
        did=community,
        collection="social.coves.community.profile",
        rkey="self",
        operation="create",
        rev=tid(now_us - 2000),
        cid=cid(f"community{n}"),
        record=record,
    )
    post_rkey = tid(now_us - 1000)
    post_cid = cid(f"post{n}")
    body = post_record(community, author, title=f"post {n}")
    body["createdAt"] = format_datetime(clock.utcnow())
    assert await writer.index(
        did=community,
        collection="social.coves.community.post",
        rkey=post_rkey,
        operation="create",
        rev=tid(now_us - 1000),
        cid=post_cid,
        record=body,
    )
    return community, f"at://{community}/social.coves.community.post/{post_rkey}", post_cid
