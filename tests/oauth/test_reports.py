"""social.coves.admin.submitReport: stored for admins, validated, limited per account."""

from __future__ import annotations

from typing import Any

import trio

from coves.auth.base import AuthPolicy
from coves.db.queries import reports as q
from coves.xrpc.app import create_app
from coves.xrpc.routing import collect_endpoints
from tests.oauth.conftest import OAuthWorld

NSID = "social.coves.admin.submitReport"
TARGET = "at://did:plc:cccccccccccccccccccccccc/social.coves.community.comment/3kabcdefghijk"


async def submit(app: Any, token: str | None, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with trio.fail_after(10):
        return await app.test_client().post(f"/xrpc/{NSID}", headers=headers, json=body)


def app_for(world: OAuthWorld) -> Any:
    endpoints = collect_endpoints()
    assert endpoints[NSID].auth == AuthPolicy.REQUIRED
    return create_app(world.ctx, endpoints)


async def test_report_is_stored_for_admins(world: OAuthWorld) -> None:
    app = app_for(world)
    session = await world.session()
    response = await submit(
        app,
        world.token(session),
        {"targetUri": TARGET, "reason": "harassment", "explanation": "  insults  "},
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["success"] is True and isinstance(body["reportId"], int)
    (row,) = await q.list_reports(world.ctx.db, status="open", limit=10)
    assert row["id"] == body["reportId"]
    assert (row["reporter_did"], row["target_uri"], row["target_type"]) == (
        session.did,
        TARGET,
        "comment",
    )
    assert (row["reason"], row["explanation"], row["status"]) == ("harassment", "insults", "open")
    assert await q.set_status(world.ctx.db, body["reportId"], "resolved")
    assert await q.list_reports(world.ctx.db, status="open", limit=10) == []


async def test_account_reports_and_bad_input(world: OAuthWorld) -> None:
    app = app_for(world)
    token = world.token(await world.session())
    ok = await submit(
        app, token, {"targetUri": "at://did:plc:cccccccccccccccccccccccc", "reason": "spam"}
    )
    assert ok.status_code == 200
    (row,) = await q.list_reports(world.ctx.db, status=None, limit=10)
    assert row["target_type"] == "account"
    for body in (
        {"targetUri": TARGET, "reason": "boring"},
        {"targetUri": "https://example.com", "reason": "spam"},
        {"targetUri": "at://alice.example.com/social.coves.community.post/3k", "reason": "spam"},
        {"targetUri": TARGET, "reason": "other", "explanation": "x" * 1001},
        {"reason": "spam"},
    ):
        response = await submit(app, token, body)
        assert response.status_code == 400, body
        assert (await response.get_json())["error"] == "InvalidRequest"
    assert len(await q.list_reports(world.ctx.db, status=None, limit=10)) == 1


async def test_reports_need_a_signed_in_account(world: OAuthWorld) -> None:
    response = await submit(app_for(world), None, {"targetUri": TARGET, "reason": "spam"})
    assert response.status_code == 401


async def test_ten_reports_a_minute_per_account(world: OAuthWorld) -> None:
    app = app_for(world)
    first = world.token(await world.session())
    second = world.token(await world.session("did:plc:dddddddddddddddddddddddd"))
    for _ in range(10):
        assert (
            await submit(app, first, {"targetUri": TARGET, "reason": "spam"})
        ).status_code == 200
    refused = await submit(app, first, {"targetUri": TARGET, "reason": "spam"})
    assert refused.status_code == 429
    assert (await refused.get_json())["error"] == "RateLimitExceeded"
    assert "Retry-After" in refused.headers
    # Another account from the same address is not affected.
    assert (await submit(app, second, {"targetUri": TARGET, "reason": "spam"})).status_code == 200
    assert len(await q.list_reports(world.ctx.db, status=None, limit=100)) == 11
