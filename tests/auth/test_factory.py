from __future__ import annotations

import trio

from coves.auth.authenticator import CovesAuthenticator
from coves.auth.factory import build_authenticator
from coves.config import test_settings
from coves.identity.factory import build_fetcher, build_resolver
from tests.auth.helpers import ALICE, NSID, World, request
from tests.support import tokens


async def test_settings_build_a_working_authenticator() -> None:
    world = World()
    settings = test_settings(
        instance_did="did:web:coves.test", service_auth_max_lifetime_seconds=90
    )
    auth = build_authenticator(settings, world.resolver)
    assert isinstance(auth, CovesAuthenticator)
    token = tokens.service_auth(world.alice_key, ALICE, "did:web:coves.test#coves_appview", NSID)
    with trio.fail_after(5):
        viewer = await auth.authenticate(request(f"Bearer {token}"))
    assert viewer is not None and viewer.did == ALICE


async def test_factory_resolver_uses_settings_ttls() -> None:
    settings = test_settings(identity_cache_ttl_seconds=123, identity_negative_ttl_seconds=7)
    resolver = build_resolver(settings, None, build_fetcher(settings))
    assert (resolver.ttl, resolver.negative_ttl) == (123.0, 7.0)


def test_oauth_is_built_only_with_an_issuer_allowlist() -> None:
    from coves.auth.factory import build_oauth, dpop_nonce_secret

    settings = test_settings()
    fetcher = build_fetcher(settings)
    assert build_oauth(settings, fetcher) is None
    assert build_oauth(settings.replace(oauth_issuers=("https://auth.test",)), fetcher)
    assert len(dpop_nonce_secret(settings)) == 32
