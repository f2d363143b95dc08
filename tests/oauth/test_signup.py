"""social.coves.actor.signup against the reference PDS (invites required, as in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from coves.config import test_settings
from coves.db import Database
from coves.db.queries import identity as identity_q
from coves.secrets import Secret
from tests.oauth.live import Live, open_live, roomy_limiter
from tests.support.pds import PdsAccount, TestPds

NSID = "social.coves.actor.signup"


@pytest.fixture
async def live(pds: TestPds, db: Database) -> AsyncIterator[Live]:
    async with open_live(
        pds, db, pds_url=pds.url, pds_admin_password=Secret(pds.admin_password)
    ) as live:
        yield live


async def call(live: Live, body: Any, **headers: str) -> Any:
    with trio.fail_after(30):
        return await live.app.test_client().post(f"/xrpc/{NSID}", json=body, headers=headers)


def new_handle(live: Live) -> str:
    return f"{live.pds.unique_name('s')}.{live.pds.handle_domain}"


async def test_signup_then_sign_in_through_coves(live: Live) -> None:
    handle = new_handle(live)
    password = "correct horse battery staple"
    response = await call(live, {"handle": handle, "email": f"x@{handle}", "password": password})
    assert response.status_code == 200, await response.get_data()
    body = await response.get_json()
    assert body["handle"] == handle and body["did"].startswith("did:plc:")
    assert set(body) == {"did", "handle"}  # no PDS tokens leave Coves
    user = await identity_q.user_by_did(live.ctx.db, body["did"])
    assert user is not None and user["handle"] == handle and user["pds_url"] == live.pds.url
    # The account is real: its password opens a session on the PDS...
    session = await live.pds.xrpc(
        "POST",
        "com.atproto.server.createSession",
        json={"identifier": handle, "password": password},
    )
    assert session.status_code == 200 and session.json()["did"] == body["did"]
    # ...and it signs in through Coves' OAuth flow.
    live.handles.records[handle] = body["did"]
    account = PdsAccount(body["did"], handle, f"x@{handle}", password, "", "")
    with trio.fail_after(60):
        landing = await live.sign_in_mobile(account)
    assert landing.query["did"] == body["did"]


async def test_signup_refusals(pds: TestPds, db: Database) -> None:
    async with open_live(
        pds,
        db,
        limiter=roomy_limiter(test_settings(), signup=100),
        pds_url=pds.url,
        pds_admin_password=Secret(pds.admin_password),
    ) as live:
        await _refusals(live)


async def _refusals(live: Live) -> None:
    taken = new_handle(live)
    ok = await call(live, {"handle": taken, "email": f"a@{taken}", "password": "long enough pw"})
    assert ok.status_code == 200
    for body, status, error in (
        (
            {"handle": taken, "email": "b@example.com", "password": "long enough pw"},
            409,
            "HandleNotAvailable",
        ),
        (
            {
                "handle": "someone.elsewhere.example",
                "email": "c@example.com",
                "password": "long enough pw",
            },
            400,
            "InvalidHandle",
        ),
        (
            {"handle": new_handle(live), "email": "not-an-email", "password": "long enough pw"},
            400,
            "InvalidEmail",
        ),
        (
            {"handle": new_handle(live), "email": "d@example.com", "password": "short"},
            400,
            "InvalidRequest",
        ),
        (
            {"handle": "not a handle", "email": "e@example.com", "password": "long enough pw"},
            400,
            "InvalidRequest",
        ),
    ):
        response = await call(live, body)
        assert response.status_code == status, (body, await response.get_data())
        assert (await response.get_json())["error"] == error


async def test_without_the_admin_password_an_invite_code_is_needed(
    pds: TestPds, db: Database
) -> None:
    async with open_live(pds, db, pds_url=pds.url) as live:
        handle = new_handle(live)
        body = {"handle": handle, "email": f"f@{handle}", "password": "long enough pw"}
        refused = await call(live, body)
        assert refused.status_code == 400
        assert (await refused.get_json())["error"] == "InvalidInviteCode"
        code = await pds.create_invite_code()
        accepted = await call(live, {**body, "inviteCode": code})
        assert accepted.status_code == 200, await accepted.get_data()
        bad = await call(
            live,
            {
                "handle": new_handle(live),
                "email": "g@example.com",
                "password": "long enough pw",
                "inviteCode": "not-a-code",
            },
        )
        assert bad.status_code == 400
        assert (await bad.get_json())["error"] == "InvalidInviteCode"


async def test_signups_are_limited_per_address(live: Live) -> None:
    for _ in range(5):
        response = await call(live, {"handle": "x"})
        assert response.status_code == 400
    refused = await call(live, {"handle": "x"})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
