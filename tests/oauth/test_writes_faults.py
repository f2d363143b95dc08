"""Writes through Coves when things go wrong: PDS down, refused or expired sessions,
callers without a Coves session, and the stream echoing a write Coves already indexed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from coves import clock
from coves.db import Database
from tests.oauth.live import Live, open_live
from tests.oauth.writes_support import seed_post, sign_in
from tests.support.pds import TestPds

VOTE = "social.coves.feed.vote.create"


@pytest.fixture
async def live(pds: TestPds, db: Database) -> AsyncIterator[Live]:
    async with open_live(pds, db) as live:
        yield live


async def vote_rows(live: Live, did: str) -> int:
    return int(
        await live.ctx.db.fetchval("SELECT count(*) FROM votes WHERE voter_did = %s", (did,))
    )


async def test_pds_down_during_a_write_is_503_and_changes_nothing(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    await trio.to_thread.run_sync(live.pds.stop_pds)
    try:
        with trio.fail_after(60):
            response = await user.call(
                VOTE, {"subject": {"uri": post, "cid": post_cid}, "direction": "up"}
            )
        assert response.status_code == 503
        assert (await response.get_json())["error"] == "PdsUnavailable"
    finally:
        await trio.to_thread.run_sync(live.pds.start_pds)
    assert await vote_rows(live, user.did) == 0
    view = await (await user.query("social.coves.community.post.get", uris=post)).get_json()
    assert view["posts"][0]["stats"]["upvotes"] == 0
    # Back up: the same call works, so nothing was left half done.
    ok = await user.call(VOTE, {"subject": {"uri": post, "cid": post_cid}, "direction": "up"})
    assert ok.status_code == 200
    assert await vote_rows(live, user.did) == 1


async def test_an_expired_access_token_is_refreshed_before_the_write(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    before = await live.service.store.session(user.session_id)
    assert before is not None
    await live.ctx.db.execute(
        "UPDATE oauth_sessions SET access_expires_at = %s WHERE session_id = %s",
        (clock.utcnow(), user.session_id),
    )
    response = await user.call(VOTE, {"subject": {"uri": post, "cid": post_cid}, "direction": "up"})
    assert response.status_code == 200, await response.get_data()
    after = await live.service.store.session(user.session_id)
    assert after is not None and after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token
    assert live.service.sessions.refreshes == 1


async def test_a_revoked_grant_answers_sign_in_again_and_writes_nothing(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    session = await live.service.store.session(user.session_id)
    assert session is not None
    server = await live.service.discovery.auth_server(session.issuer)
    assert await live.service.grants.revoke(
        server, session.dpop_key, session.refresh_token, session.client_kid
    )
    await live.ctx.db.execute(
        "UPDATE oauth_sessions SET access_expires_at = %s WHERE session_id = %s",
        (clock.utcnow(), user.session_id),
    )
    response = await user.call(VOTE, {"subject": {"uri": post, "cid": post_cid}, "direction": "up"})
    assert response.status_code == 401
    body = await response.get_json()
    assert body["error"] == "SessionExpired" and "sign in again" in body["message"]
    assert await vote_rows(live, user.did) == 0
    assert await live.service.store.session(user.session_id) is None
    me = await live.app.test_client().get("/api/me", headers=user.headers())
    assert me.status_code == 401


async def test_callers_without_a_coves_session_cannot_write_through_coves(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    # A third-party client proxied through the PDS: service auth for this method.
    minted = await live.pds.xrpc(
        "GET",
        "com.atproto.server.getServiceAuth",
        token=user.account.access_jwt,
        params={"aud": live.ctx.settings.instance_did, "lxm": VOTE},
    )
    assert minted.status_code == 200, minted.text
    with trio.fail_after(30):
        response = await live.app.test_client().post(
            f"/xrpc/{VOTE}",
            headers={"Authorization": f"Bearer {minted.json()['token']}"},
            json={"subject": {"uri": post, "cid": post_cid}, "direction": "up"},
        )
    assert response.status_code == 403
    assert (await response.get_json())["error"] == "SessionRequired"
    anonymous = await live.app.test_client().post(
        f"/xrpc/{VOTE}", json={"subject": {"uri": post, "cid": post_cid}, "direction": "up"}
    )
    assert anonymous.status_code == 401
    assert await vote_rows(live, user.did) == 0


async def test_the_streams_echo_of_a_write_changes_nothing(live: Live) -> None:
    user = await sign_in(live)
    _community, post, post_cid = await seed_post(live)
    response = await user.call(VOTE, {"subject": {"uri": post, "cid": post_cid}, "direction": "up"})
    vote = await response.get_json()
    latest = await live.pds.xrpc(
        "GET", "com.atproto.sync.getLatestCommit", params={"did": user.did}
    )
    rev = latest.json()["rev"]
    stored = await user.pds_record(vote["uri"])
    snapshot = await live.ctx.db.fetchrow(
        "SELECT upvote_count, score FROM posts WHERE uri = %s", (post,)
    )
    votes = await live.ctx.db.fetch("SELECT * FROM votes WHERE voter_did = %s", (user.did,))
    # The stream delivers the same commit later; the indexer sees it again.
    applied = await live.ctx.pds.writer.index(
        did=user.did,
        collection="social.coves.feed.vote",
        rkey=vote["uri"].rsplit("/", 1)[1],
        operation="create",
        rev=rev,
        cid=vote["cid"],
        record=stored["value"],
    )
    assert applied
    assert (
        await live.ctx.db.fetchrow("SELECT upvote_count, score FROM posts WHERE uri = %s", (post,))
        == snapshot
        == {"upvote_count": 1, "score": 1}
    )
    again = await live.ctx.db.fetch("SELECT * FROM votes WHERE voter_did = %s", (user.did,))
    assert again == votes


async def test_concurrent_writes_of_one_session_refresh_it_once(live: Live) -> None:
    user = await sign_in(live)
    posts = [await seed_post(live) for _ in range(6)]
    await live.ctx.db.execute(
        "UPDATE oauth_sessions SET access_expires_at = %s WHERE session_id = %s",
        (clock.utcnow(), user.session_id),
    )
    statuses: list[int] = []

    async def vote(post: str, cid: str) -> None:
        response = await user.call(VOTE, {"subject": {"uri": post, "cid": cid}, "direction": "up"})
        statuses.append(response.status_code)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _community, post, cid in posts:
                nursery.start_soon(vote, post, cid)
    assert statuses == [200] * len(posts)
    assert live.service.sessions.refreshes == 1  # one rotation at the PDS, shared by all
    assert await vote_rows(live, user.did) == len(posts)


def test_update_profile_takes_a_body_with_both_images_at_the_lexicon_sizes() -> None:
    from coves.media.profile_images import profile_limits
    from coves.writes.profile import MAX_BODY, PROFILE

    avatar = profile_limits("avatar", PROFILE)
    banner = profile_limits("banner", PROFILE)
    assert (avatar.max_bytes, banner.max_bytes) == (1_000_000, 2_000_000)
    base64_images = (avatar.max_bytes + 2) // 3 * 4 + (banner.max_bytes + 2) // 3 * 4
    assert base64_images < MAX_BODY <= base64_images + 128 * 1024


async def test_update_profile_decodes_images_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decoding megabytes of base64 and parsing the image would stall every request
    this process serves: it must not run on the event loop's thread."""
    import threading

    from coves.errors import XRPCError
    from coves.writes import profile

    decoded_on: list[threading.Thread] = []

    def spy(*args: object) -> object:
        decoded_on.append(threading.current_thread())
        raise XRPCError(400, "InvalidImage", "stop before the PDS")

    monkeypatch.setattr(profile, "decode_image", spy)
    body = {"avatarBlob": "aGVsbG8=", "avatarMimeType": "image/png"}
    with trio.fail_after(10), pytest.raises(XRPCError):
        await profile.update_profile(None, None, body)  # type: ignore[arg-type]
    assert len(decoded_on) == 1
    assert decoded_on[0] is not threading.main_thread()
