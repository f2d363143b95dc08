"""The refresher and ``coves communities refresh`` against the reference PDS."""

from __future__ import annotations

import trio

from coves.context import AppContext
from coves.db import Database
from coves.hosting.cli import refresh_communities
from nurseries.community_refresher import TokenRefresher, community_refresher_child
from tests.hosting.conftest import Client, CommandRun, HookedTransport
from tests.support.pds import TestPds

ALICE = "did:plc:alicealicealicealiceali"


async def make(client: Client, pds: TestPds) -> str:
    name = pds.unique_name("f")[:16]
    status, out = await client.post("social.coves.community.create", {"name": name}, viewer=ALICE)
    assert status == 200, out
    return name


async def test_the_refresher_renews_a_session_nearing_expiry(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    with trio.fail_after(60):
        soon = await make(client, pds)
        later = await make(client, pds)
        await db.execute(
            "UPDATE community_accounts SET access_expires_at = now() + interval '2 minutes'"
            " WHERE name = %s",
            (soon,),
        )
        before = await db.fetchval(
            "SELECT refresh_sealed FROM community_accounts WHERE name = %s", (soon,)
        )
        transport.sent.clear()
        refresher = TokenRefresher(hosting_ctx.hosting, metrics=hosting_ctx.metrics)
        async with trio.open_nursery() as nursery:
            await nursery.start(refresher.run)
            while refresher.states.get(soon) is None or refresher.states[soon].renewed == 0:
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        after = await db.fetchrow(
            "SELECT refresh_sealed, access_expires_at > now() + interval '1 hour' AS fresh"
            " FROM community_accounts WHERE name = %s",
            (soon,),
        )
        assert after is not None and after["fresh"] and after["refresh_sealed"] != before
        assert later not in refresher.states  # two hours left: nothing to do yet
        assert transport.sent.count("com.atproto.server.refreshSession") == 1


async def test_the_child_is_wired_only_when_enabled(hosting_ctx: AppContext) -> None:
    kwargs = {"metrics": hosting_ctx.metrics, "ahead": 1800.0}
    assert community_refresher_child(hosting_ctx.hosting, enabled=False, **kwargs) is None
    spec = community_refresher_child(hosting_ctx.hosting, enabled=True, **kwargs)
    assert spec is not None and spec.name == "community_refresher"
    assert spec.critical is False and spec.details is not None


async def test_refresh_all_reports_each_community(
    client: Client, pds: TestPds, hosting_ctx: AppContext
) -> None:
    with trio.fail_after(60):
        first, second = await make(client, pds), await make(client, pds)
        results = await refresh_communities(hosting_ctx.hosting, None)
        assert {r["community"] for r in results} == {first, second}
        assert all(r["ok"] for r in results)
        missing = await refresh_communities(hosting_ctx.hosting, ["nosuchcommunity"])
        assert missing == [
            {
                "community": "nosuchcommunity",
                "ok": False,
                "error": "NotFound",
                "message": "community nosuchcommunity is not hosted here",
            }
        ]


async def test_the_command_line(
    client: Client, pds: TestPds, communities_command: CommandRun
) -> None:
    with trio.fail_after(90):
        name = await make(client, pds)
        status, lines, output = await communities_command("refresh", name)
        assert status == 0, output
        assert lines[-1]["community"] == name and lines[-1]["ok"] is True
        assert "eyJ" not in output  # no token in the output

        status, lines, _ = await communities_command("refresh", "nosuchcommunity")
        assert status == 1
        assert lines[-1]["error"] == "NotFound"
