"""coves rotate-key re-seals users' OAuth sessions; a session survives the rotation."""

from __future__ import annotations

import base64
import os

import trio

from coves.oauth.store import OAuthStore
from coves.rotation import check_sealed_data, rotate_keys
from coves.secrets import Secret, SecretBox
from tests.oauth.conftest import OAuthWorld


def new_key() -> Secret:
    return Secret(base64.b64encode(os.urandom(32)).decode())


async def test_sessions_are_resealed_and_still_open(world: OAuthWorld) -> None:
    old, new = world.ctx.settings.encryption_key, new_key()
    session = await world.session()
    ring = SecretBox(new, old_keys=[old])
    with trio.fail_after(20):
        report = await rotate_keys(world.ctx.db, ring)
        assert report.resealed["oauth_sessions.secrets_sealed"] == 1
        assert not report.failed
        only_new = SecretBox(new)
        await check_sealed_data(world.ctx.db, only_new)
        reopened = await OAuthStore(world.ctx.db, only_new).session(session.session_id)
    assert reopened is not None
    assert (reopened.access_token, reopened.refresh_token) == (
        session.access_token,
        session.refresh_token,
    )
    assert reopened.dpop_key.jkt == session.dpop_key.jkt
