"""Community PDS sessions against the reference PDS: expiry, 401, dead refresh, lock-out."""

from __future__ import annotations

import pytest
import trio

from coves.context import AppContext
from coves.db import Database
from coves.hosting.credentials import seal
from coves.hosting.sessions import LockedOut
from coves.pds.errors import PdsUnavailable
from coves.secrets import Secret
from tests.hosting.conftest import Client, HookedTransport
from tests.support.pds import TestPds

ALICE = "did:plc:alicealicealicealiceali"
UPDATE = "social.coves.community.update"
REFRESH = "com.atproto.server.refreshSession"
LOGIN = "com.atproto.server.createSession"


async def make(client: Client, pds: TestPds) -> tuple[str, str]:
    name = pds.unique_name("s")[:16]
    status, out = await client.post("social.coves.community.create", {"name": name}, viewer=ALICE)
    assert status == 200, out
    return name, out["did"]


def refreshes(ctx: AppContext, outcome: str) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "coves_community_token_refresh_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_an_expired_token_is_renewed_before_the_write(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    with trio.fail_after(60):
        name, did = await make(client, pds)
        before = await db.fetchrow(
            "SELECT refresh_sealed FROM community_accounts WHERE name = %s",
            (name,),
        )
        assert before is not None
        # Simulated expiry: the stored token is past its time.
        await db.execute(
            "UPDATE community_accounts SET access_expires_at = now() - interval '1 minute'"
            " WHERE name = %s",
            (name,),
        )
        transport.sent.clear()
        status, out = await client.post(
            UPDATE, {"communityDid": did, "displayName": "renewed"}, viewer=ALICE
        )
        assert status == 200, out
        assert REFRESH in transport.sent
        assert transport.sent.index(REFRESH) < transport.sent.index("com.atproto.repo.putRecord")
        after = await db.fetchrow(
            "SELECT refresh_sealed, access_expires_at > now() + interval '1 hour' AS fresh"
            " FROM community_accounts WHERE name = %s",
            (name,),
        )
        assert after is not None
        assert after["refresh_sealed"] != before["refresh_sealed"]
        assert after["fresh"]  # the renewed token's own expiry, about two hours ahead
        assert refreshes(hosting_ctx, "refreshed") == 1


async def test_a_refused_token_is_renewed_and_the_write_resent(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    with trio.fail_after(60):
        name, did = await make(client, pds)
        box = hosting_ctx.settings.secret_box()
        bogus = seal(box, name, "access_sealed", Secret("eyJhbGciOiJIUzI1NiJ9.e30.bogus"))
        await db.execute(
            "UPDATE community_accounts SET access_sealed = %s WHERE name = %s", (bogus, name)
        )
        transport.sent.clear()
        status, out = await client.post(
            UPDATE, {"communityDid": did, "displayName": "after 401"}, viewer=ALICE
        )
        assert status == 200, out
        # getRecord needs no auth; the upload-free put is refused once, renewed, re-sent.
        assert transport.sent.count("com.atproto.repo.putRecord") == 2
        assert transport.sent.count(REFRESH) == 1


async def test_a_dead_refresh_token_falls_back_to_the_password(
    client: Client, pds: TestPds, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    with trio.fail_after(60):
        name, did = await make(client, pds)
        sessions = hosting_ctx.hosting.sessions
        creds = await sessions.load(name)
        assert creds.refresh is not None
        revoked = await pds.xrpc(
            "POST", "com.atproto.server.deleteSession", token=creds.refresh.reveal()
        )
        assert revoked.status_code == 200
        transport.sent.clear()
        renewed = await sessions.refresh(name)
        assert transport.sent == [REFRESH, LOGIN]
        assert renewed.refresh != creds.refresh
        assert refreshes(hosting_ctx, "password") == 1
        status, out = await client.post(
            UPDATE, {"communityDid": did, "displayName": "still writable"}, viewer=ALICE
        )
        assert status == 200, out


async def test_when_nothing_works_the_community_is_locked_out(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext
) -> None:
    with trio.fail_after(60):
        name, did = await make(client, pds)
        sessions = hosting_ctx.hosting.sessions
        creds = await sessions.load(name)
        assert creds.refresh is not None
        await pds.xrpc("POST", "com.atproto.server.deleteSession", token=creds.refresh.reveal())
        changed = await pds.xrpc(
            "POST",
            "com.atproto.admin.updateAccountPassword",
            admin=True,
            json={"did": did, "password": "changed-behind-our-back-1"},
        )
        assert changed.status_code == 200, changed.text
        with pytest.raises(LockedOut) as caught:
            await sessions.refresh(name)
        assert caught.value.status == 502
        row = await db.fetchrow(
            "SELECT locked_out, refresh_failures, last_error FROM community_accounts"
            " WHERE name = %s",
            (name,),
        )
        assert row is not None
        assert row["locked_out"] is True
        assert row["refresh_failures"] == 1
        assert "changed-behind" not in row["last_error"]
        assert refreshes(hosting_ctx, "locked_out") == 1
        status, out = await client.post(
            UPDATE, {"communityDid": did, "displayName": "x"}, viewer=ALICE
        )
        # The stored access token still works (only renewal is broken): a write succeeds.
        assert status == 200, out


async def test_concurrent_renewals_of_one_community_are_one(
    client: Client, pds: TestPds, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    with trio.fail_after(60):
        name, _ = await make(client, pds)
        sessions = hosting_ctx.hosting.sessions
        creds = await sessions.load(name)
        transport.sent.clear()
        results = []

        async def renew() -> None:
            results.append(await sessions.fresh(creds, force=True))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(renew)
        assert transport.sent.count(REFRESH) == 1
        assert len({r.refresh_sealed for r in results}) == 1
        assert sessions.single._locks == {}  # no lock left behind


async def test_two_processes_renewing_one_community_renew_once(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    """An API worker and the ingest process (two pools on one database, each with its
    own CommunitySessions) renew the same community at once: the PDS sees one
    refresh, no password login, and both use the one new session."""
    from coves.hosting.sessions import CommunitySessions
    from coves.metrics import Metrics

    with trio.fail_after(60):
        name, _ = await make(client, pds)
        other_db = Database(db.conninfo, pool_size=4, statement_timeout_ms=20_000)
        await other_db.open()
        try:
            processes = [
                hosting_ctx.hosting.sessions,
                CommunitySessions(
                    other_db,
                    hosting_ctx.settings.secret_box,
                    hosting_ctx.pds.connections,
                    metrics=Metrics(),
                ),
            ]
            creds = await processes[0].load(name)
            transport.sent.clear()
            results = []

            async def renew(sessions: CommunitySessions) -> None:
                results.append(await sessions.fresh(creds, force=True))

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    for sessions in processes:
                        nursery.start_soon(renew, sessions)
        finally:
            await other_db.close()
        assert transport.sent.count(REFRESH) == 1
        assert LOGIN not in transport.sent
        assert len({r.refresh_sealed for r in results}) == 1
        assert results[0].refresh_sealed != creds.refresh_sealed
        assert await db.fetchval("SELECT count(*) FROM refresh_leases") == 0


async def test_pds_down_during_a_renewal_is_a_503_not_a_lockout(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext
) -> None:
    with trio.fail_after(120):
        name, _ = await make(client, pds)
        await trio.to_thread.run_sync(lambda: pds.stop_pds(kill=True))
        try:
            with pytest.raises(PdsUnavailable):
                await hosting_ctx.hosting.sessions.refresh(name)
        finally:
            await trio.to_thread.run_sync(pds.start_pds)
        row = await db.fetchrow(
            "SELECT locked_out, refresh_failures FROM community_accounts WHERE name = %s",
            (name,),
        )
        assert row == {"locked_out": False, "refresh_failures": 1}
        renewed = await hosting_ctx.hosting.sessions.refresh(name)
        assert renewed.access is not None
        row = await db.fetchrow(
            "SELECT refresh_failures FROM community_accounts WHERE name = %s", (name,)
        )
        assert row == {"refresh_failures": 0}


async def test_rotate_key_reseals_community_credentials(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext
) -> None:
    """After ``coves rotate-key`` a community still opens its credentials and renews."""
    import base64
    import os

    from coves.db.sealed import COMMUNITY_PASSWORD
    from coves.hosting import build_hosting
    from coves.rotation import rotate_keys
    from coves.secrets import SecretBox

    with trio.fail_after(60):
        name, did = await make(client, pds)
        old = hosting_ctx.settings.encryption_key
        new = Secret(base64.b64encode(os.urandom(32)).decode())
        report = await rotate_keys(db, SecretBox(new, old_keys=[old]))
        assert report.resealed[COMMUNITY_PASSWORD.label] >= 1
        assert not report.failed
        rotated = hosting_ctx.settings.replace(encryption_key=new, encryption_old_keys=())
        hosting = build_hosting(
            rotated, db, hosting_ctx.pds, metrics=hosting_ctx.metrics, validator=None
        )
        renewed = await hosting.sessions.refresh(name)
        assert renewed.did == did
        # The old key alone no longer opens what is stored.
        row = await db.fetchrow(
            "SELECT password_sealed FROM community_accounts WHERE name = %s", (name,)
        )
        assert row is not None
        with pytest.raises(ValueError):
            SecretBox(old).open(
                row["password_sealed"], context=COMMUNITY_PASSWORD.context({"name": name})
            )


async def test_posting_gets_a_renewing_auth_for_hosted_communities_only(
    client: Client, pds: TestPds, db: Database, hosting_ctx: AppContext, transport: HookedTransport
) -> None:
    from coves.errors import XRPCError

    with trio.fail_after(60):
        name, did = await make(client, pds)
        await db.execute(
            "UPDATE community_accounts SET access_expires_at = now() - interval '1 minute'"
            " WHERE name = %s",
            (name,),
        )
        url, auth = await hosting_ctx.hosting.auth_for(did)
        assert url == pds.url
        transport.sent.clear()
        written = await hosting_ctx.pds.writer.create(
            hosting_ctx.pds.client(url),
            auth,
            repo=did,
            collection="social.coves.community.post",
            record={
                "$type": "social.coves.community.post",
                "community": did,
                "author": ALICE,
                "title": "hello",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
        )
        assert written.indexed
        assert transport.sent[:2] == [REFRESH, "com.atproto.repo.createRecord"]
        with pytest.raises(XRPCError) as caught:
            await hosting_ctx.hosting.auth_for("did:plc:notherenotherenotherenot")
        assert (caught.value.status, caught.value.error) == (400, "CommunityNotHostedHere")
