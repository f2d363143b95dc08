from __future__ import annotations

import trio

from coves.config import test_settings
from coves.context import AppContext
from coves.db import Database
from coves.identity import IdentityResolver
from coves.identity.hosted_by import HostedByQueue
from coves.ingest.build import production_indexer
from coves.ingest.indexer import _call
from tests.support.fake_did import PLC_URL, FakeNetwork

ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


async def test_indexer_hooks_purge_identities_and_queue_verifications() -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com")
    resolver = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup)
    db = Database("postgresql:///unused")
    ctx = AppContext(settings=test_settings(), db=db, identity=resolver, didweb=HostedByQueue())
    indexer = production_indexer(ctx)
    with trio.fail_after(5):
        assert (await resolver.identity(ALICE)).handle == "alice.example.com"
        net.add_plc(ALICE, None, "alice2.example.com")
        for hook in indexer.on_identity_change:
            await _call(hook, "on_identity_change", [ALICE])
        assert (await resolver.identity(ALICE)).handle == "alice2.example.com"
        assert indexer.on_community_needs_verification is not None
        await _call(
            indexer.on_community_needs_verification,
            "on_community_needs_verification",
            "did:plc:cccccccccccccccccccccccc",
            "did:web:remote.test",
        )
    assert ctx.didweb.receive.receive_nowait() == (
        "did:plc:cccccccccccccccccccccccc",
        "did:web:remote.test",
    )
