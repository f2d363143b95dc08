"""community.create against the reference PDS: provisioning, reads, uniqueness, policy."""

from __future__ import annotations

from typing import Any

import trio

from coves.context import AppContext
from coves.db import Database
from coves.errors import XRPCError
from coves.ingest.build import production_indexer
from coves.ingest.types import Frame
from coves.pds.writes import commit_event
from tests.hosting.conftest import DOMAIN, INSTANCE_DID, Client
from tests.support.pds import TestPds

CREATE = "social.coves.community.create"
ALICE = "did:plc:alicealicealicealiceali"
BOB = "did:plc:bobbobbobbobbobbobbobbob"


def unique(pds: TestPds, prefix: str = "g") -> str:
    return pds.unique_name(prefix)[:16]


async def test_create_provisions_an_account_and_is_readable_at_once(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext
) -> None:
    name = unique(pds)
    with trio.fail_after(60):
        status, out = await client.post(
            CREATE,
            {
                "name": name.upper(),
                "displayName": "Gardeners",
                "description": "Soil and seeds",
                "visibility": "public",
                "language": "en",
                "categories": ["hobbies"],
            },
            viewer=ALICE,
        )
        assert status == 200, out
        did, handle = out["did"], out["handle"]
        assert handle == f"c-{name}.{DOMAIN}"
        assert did.startswith("did:plc:")
        assert out["uri"] == f"at://{did}/social.coves.community.profile/self"

        # Every identifier form reads the same community, right away.
        for ident in (did, handle, f"!{name}@{DOMAIN}", f"!{name.upper()}@{DOMAIN}"):
            status, view = await client.get("social.coves.community.get", community=ident)
            assert status == 200, (ident, view)
            assert view["did"] == did
            assert view["handle"] == handle
            assert view["displayName"] == "Gardeners"
            assert view["createdByDid"] == ALICE
            assert view["hostedByDid"] == INSTANCE_DID

        # The PDS holds the account (its DID document names the handle and the PDS) and
        # the profile record, written by the community itself.
        doc = await pds.resolve_did(did)
        assert f"at://{handle}" in doc["alsoKnownAs"]
        record = await pds.xrpc(
            "GET",
            "com.atproto.repo.getRecord",
            params={"repo": did, "collection": "social.coves.community.profile", "rkey": "self"},
        )
        value = record.json()["value"]
        assert record.json()["cid"] == out["cid"]
        assert value["createdBy"] == ALICE
        assert value["hostedBy"] == INSTANCE_DID
        assert value["federation"] == {"allowExternalDiscovery": True}

        # Credentials are sealed: nothing in the row is a token or the password.
        row = await db.fetchrow("SELECT * FROM community_accounts WHERE did = %s", (did,))
        assert row is not None and row["state"] == "active"
        creds = await hosting_ctx.hosting.sessions.load(name)
        assert creds.access is not None and creds.refresh is not None
        for column in ("password_sealed", "access_sealed", "refresh_sealed"):
            stored = bytes(row[column])
            for secret in (creds.password, creds.access, creds.refresh):
                assert secret.reveal().encode() not in stored
        login = await pds.xrpc(
            "POST",
            "com.atproto.server.createSession",
            json={"identifier": handle, "password": creds.password.reveal()},
        )
        assert login.status_code == 200

        # The stream's echo of the profile commit changes nothing.
        before = await db.fetchrow(
            "SELECT record_cid, updated_at FROM communities WHERE did = %s", (did,)
        )
        latest = await pds.xrpc("GET", "com.atproto.sync.getLatestCommit", params={"did": did})
        echo = commit_event(
            did=did,
            collection="social.coves.community.profile",
            rkey="self",
            operation="create",
            rev=latest.json()["rev"],
            cid=out["cid"],
            record=value,
            time_us=2_000_000_000_000_000,
        )
        result = await production_indexer(hosting_ctx).apply([Frame(echo, 0.0)])
        assert result.applied == 0
        after = await db.fetchrow(
            "SELECT record_cid, updated_at FROM communities WHERE did = %s", (did,)
        )
        assert after == before


async def test_duplicate_names_are_refused(client: Client, pds: TestPds) -> None:
    name = unique(pds, "d")
    with trio.fail_after(60):
        status, _ = await client.post(CREATE, {"name": name}, viewer=ALICE)
        assert status == 200
        status, out = await client.post(CREATE, {"name": name.upper()}, viewer=BOB)
        assert (status, out["error"]) == (409, "NameTaken")
        status, out = await client.post(CREATE, {"name": name}, viewer=ALICE)
        assert (status, out["error"]) == (409, "AlreadyExists")


async def test_concurrent_creates_of_one_name_yield_one_community(
    client: Client, pds: TestPds, db: Database
) -> None:
    name = unique(pds, "r")
    results: list[tuple[int, Any]] = []

    async def create(viewer: str) -> None:
        results.append(await client.post(CREATE, {"name": name}, viewer=viewer))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for viewer in (ALICE, BOB, "did:plc:carolcarolcarolcarolcaro"):
                nursery.start_soon(create, viewer)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409], results
    assert {out["error"] for status, out in results if status == 409} == {"NameTaken"}
    accounts = "SELECT count(*) FROM community_accounts WHERE name = %s"
    communities = "SELECT count(*) FROM communities WHERE lower(name) = %s"
    assert await db.fetchval(accounts, (name,)) == 1
    assert await db.fetchval(communities, (name,)) == 1


async def test_a_name_held_on_the_pds_by_someone_else_is_refused_and_freed(
    client: Client, pds: TestPds, db: Database
) -> None:
    name = unique(pds, "h")
    with trio.fail_after(60):
        await pds.create_account(f"c-{name}")  # not ours: created outside Coves
        status, out = await client.post(CREATE, {"name": name}, viewer=ALICE)
        assert (status, out["error"]) == (409, "NameTaken")
        assert (
            await db.fetchval("SELECT count(*) FROM community_accounts WHERE name = %s", (name,))
            == 0
        )


async def test_input_is_validated(client: Client, pds: TestPds) -> None:
    with trio.fail_after(30):
        for body, error in (
            ({"name": "-bad"}, "InvalidRequest"),
            ({"name": "has space"}, "InvalidRequest"),
            ({"name": "a" * 17}, "InvalidRequest"),
            ({"name": "ok", "createdByDid": ALICE}, "InvalidRequest"),
            ({"name": "ok", "visibility": "secret"}, "InvalidRequest"),
            ({"name": "ok", "description": "x" * 3001}, "InvalidRequest"),
            ({}, "InvalidRequest"),
        ):
            status, out = await client.post(CREATE, body, viewer=ALICE)
            assert (status, out["error"]) == (400, error), (body, out)
        status, out = await client.post(CREATE, {"name": "anon"}, viewer=None)
        assert status == 401


async def test_creators_allowlist_and_daily_limit(
    hosting_ctx: AppContext, pds: TestPds, db: Database
) -> None:
    from quart_trio import QuartTrio

    from coves.xrpc.app import create_app

    settings = hosting_ctx.settings.replace(
        community_creators=(ALICE,), community_creates_per_day=2
    )
    ctx = AppContext(
        settings=settings,
        db=db,
        authenticator=hosting_ctx.authenticator,
        lexicons=hosting_ctx.lexicons,
    )
    app: QuartTrio = create_app(ctx)
    limited = Client(app, hosting_ctx.lexicons)  # type: ignore[arg-type]
    try:
        with trio.fail_after(90):
            status, out = await limited.post(CREATE, {"name": unique(pds, "x")}, viewer=BOB)
            assert (status, out["error"]) == (403, "Forbidden")
            for _ in range(2):
                name = unique(pds, "l")
                status, out = await limited.post(CREATE, {"name": name}, viewer=ALICE)
                assert status == 200, out
            status, out = await limited.post(CREATE, {"name": unique(pds, "l")}, viewer=ALICE)
            assert (status, out["error"]) == (429, "RateLimitExceeded")
    finally:
        await ctx.pds.aclose()


async def test_a_pds_that_wants_invites_without_an_admin_password(
    hosting_ctx: AppContext, pds: TestPds, db: Database
) -> None:
    from coves.hosting import build_hosting

    settings = hosting_ctx.settings.replace(pds_admin_password=None)
    hosting = build_hosting(
        settings, db, hosting_ctx.pds, metrics=hosting_ctx.metrics, validator=None
    )
    name = unique(pds, "i")
    with trio.fail_after(30):
        try:
            await hosting.create(ALICE, {"name": name})
        except XRPCError as exc:
            assert (exc.status, exc.error) == (502, "UpstreamFailure")
            assert "PDS_ADMIN_PASSWORD" in exc.message
        else:
            raise AssertionError("create succeeded without an invite code")
    accounts = "SELECT count(*) FROM community_accounts WHERE name = %s"
    assert await db.fetchval(accounts, (name,)) == 0  # the name is free again
