"""Interrupted creates are resumed, never left half done: PDS restarts and crashes."""

from __future__ import annotations

import httpx
import pytest
import trio

from coves.context import AppContext
from coves.db import Database
from tests.hosting.conftest import DOMAIN, Client, HookedTransport
from tests.support.pds import TestPds

CREATE = "social.coves.community.create"
ALICE = "did:plc:alicealicealicealiceali"


class Crash(BaseException):
    """The process dying at this point: nothing after it runs, no handler sees it."""


async def expire_lease(db: Database, name: str) -> None:
    """What time does to a dead worker's lease."""
    await db.execute(
        "UPDATE community_accounts SET lease_until = now() - interval '1 second',"
        " updated_at = now() - interval '1 hour' WHERE name = %s",
        (name,),
    )


async def state(db: Database, name: str) -> str | None:
    value = await db.fetchval("SELECT state FROM community_accounts WHERE name = %s", (name,))
    return value if value is None else str(value)


async def accounts_with_handle(pds: TestPds, handle: str) -> int:
    resp = await pds.xrpc("GET", "com.atproto.identity.resolveHandle", params={"handle": handle})
    return 1 if resp.status_code == 200 else 0


async def test_pds_restart_between_account_and_profile_is_resumed(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    name = pds.unique_name("p")[:16]

    async def pds_dies(request: httpx.Request, response: httpx.Response | None) -> None:
        await trio.to_thread.run_sync(lambda: pds.stop_pds(kill=True))

    transport.after["com.atproto.server.createAccount"] = pds_dies
    with trio.fail_after(120):
        try:
            status, out = await client.post(CREATE, {"name": name}, viewer=ALICE)
        finally:
            await trio.to_thread.run_sync(pds.start_pds)
        assert (status, out["error"]) == (503, "PdsUnavailable")
        assert await state(db, name) == "account_created"
        status, _ = await client.get("social.coves.community.get", community=f"!{name}@{DOMAIN}")
        assert status == 404  # not half visible

        # The creator retries: the same create picks up where it stopped.
        status, out = await client.post(CREATE, {"name": name}, viewer=ALICE)
        assert status == 200, out
        assert await state(db, name) == "active"
        assert await accounts_with_handle(pds, out["handle"]) == 1
        status, view = await client.get("social.coves.community.get", community=f"!{name}@{DOMAIN}")
        assert status == 200 and view["did"] == out["did"]


async def test_pds_down_before_the_account_then_back(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext
) -> None:
    name = pds.unique_name("q")[:16]
    with trio.fail_after(120):
        await trio.to_thread.run_sync(lambda: pds.stop_pds(kill=True))
        try:
            status, out = await client.post(CREATE, {"name": name}, viewer=ALICE)
        finally:
            await trio.to_thread.run_sync(pds.start_pds)
        assert (status, out["error"]) == (503, "PdsUnavailable")
        assert await state(db, name) == "reserved"

        await expire_lease(db, name)
        assert await hosting_ctx.hosting.reconcile() == 1  # no user action needed
        assert await state(db, name) == "active"
        status, view = await client.get("social.coves.community.get", community=f"!{name}@{DOMAIN}")
        assert status == 200, view


async def test_a_crash_after_the_account_was_created_is_resumed_by_reconcile(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    name = pds.unique_name("k")[:16]

    async def crash(request: httpx.Request, response: httpx.Response | None) -> None:
        raise Crash

    transport.after["com.atproto.server.createAccount"] = crash
    with trio.fail_after(120):
        with pytest.raises(Crash):
            await hosting_ctx.hosting.create(ALICE, {"name": name})
        # The answer was lost: only the attempt counter says createAccount may have run.
        row = await db.fetchrow(
            "SELECT state, create_attempts, did FROM community_accounts WHERE name = %s", (name,)
        )
        assert row == {"state": "reserved", "create_attempts": 1, "did": None}

        # A retry while the dead worker's lease is still held waits its turn.
        status, out = await client.post(CREATE, {"name": name}, viewer=ALICE)
        assert (status, out["error"]) == (409, "AlreadyExists")

        await expire_lease(db, name)
        assert await hosting_ctx.hosting.reconcile() == 1
        # It logged in with the stored password instead of creating a second account.
        assert "com.atproto.server.createSession" in transport.sent
        assert transport.sent.count("com.atproto.server.createAccount") == 1
        assert await state(db, name) == "active"
        status, view = await client.get("social.coves.community.get", community=f"!{name}@{DOMAIN}")
        assert status == 200
        assert view["handle"] == f"c-{name}.{DOMAIN}"


async def test_a_crash_before_the_account_leaves_nothing_on_the_pds(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    name = pds.unique_name("b")[:16]

    async def crash(request: httpx.Request, response: httpx.Response | None) -> None:
        raise Crash

    transport.before["com.atproto.server.createAccount"] = crash
    with trio.fail_after(120):
        with pytest.raises(Crash):
            await hosting_ctx.hosting.create(ALICE, {"name": name})
        assert await accounts_with_handle(pds, f"c-{name}.{DOMAIN}") == 0
        await expire_lease(db, name)
        assert await hosting_ctx.hosting.reconcile() == 1
        assert await state(db, name) == "active"
        assert await accounts_with_handle(pds, f"c-{name}.{DOMAIN}") == 1
