"""The hostedBy verifier's rules, cache, TTLs and rate limit (MockClock, no database)."""

from __future__ import annotations

import httpx
import pytest
import trio

from coves.identity import IdentityResolver
from coves.identity.hosted_by import HostedByQueue, HostedByVerifier, host_covers_handle
from coves.identity.ratelimit import TokenBucket
from tests.support.fake_did import PLC_URL, FakeNetwork, did_document

COMMUNITY = "did:plc:cccccccccccccccccccccccc"
HANDLE = "gaming.community.coves.social"
HOST_DID = "did:web:coves.social"


def world(
    handle: str = HANDLE, host: str = "coves.social", **kw: object
) -> tuple[FakeNetwork, HostedByVerifier]:
    net = FakeNetwork()
    net.add_plc(COMMUNITY, None, handle)
    net.web[host] = did_document(f"did:web:{host}", also_known_as=[f"at://{host}"])
    resolver = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup)
    return net, HostedByVerifier(resolver, resolver.did_fetcher, **kw)  # type: ignore[arg-type]


def web_fetches(net: FakeNetwork) -> int:
    return sum(url.endswith("/.well-known/did.json") for url in net.requests)


@pytest.mark.parametrize(
    ("host", "handle", "ok"),
    [
        ("coves.social", "gaming.community.coves.social", True),
        ("community.coves.social", "gaming.community.coves.social", True),
        ("gaming.community.coves.social", "gaming.community.coves.social", True),
        ("dev.coves.social", "gaming.community.dev.coves.social", True),
        ("evil.social", "gaming.community.coves.social", False),
        ("oves.social", "gaming.community.coves.social", False),
        ("social", "gaming.community.coves.social", False),
        ("other.coves.social", "gaming.community.coves.social", False),
    ],
)
def test_host_must_be_the_handle_domain_or_a_parent(host: str, handle: str, ok: bool) -> None:
    assert host_covers_handle(host, handle) is ok


async def test_verified_when_everything_matches(autojump_clock: object) -> None:
    _net, verifier = world()
    verdict = await verifier.verify(COMMUNITY, HOST_DID)
    assert verdict.outcome == "verified", verdict


async def test_subdomain_instance_verifies(autojump_clock: object) -> None:
    """The Go quirk: did:web on a subdomain could never match an eTLD+1."""
    _net, verifier = world(handle="gaming.community.dev.coves.social", host="dev.coves.social")
    verdict = await verifier.verify(COMMUNITY, "did:web:dev.coves.social")
    assert verdict.outcome == "verified", verdict


@pytest.mark.parametrize(
    ("mutate", "hosted_by", "outcome", "reason_part"),
    [
        (None, "did:web:evil.social", "rejected", "does not cover"),
        (None, "did:plc:dddddddddddddddddddddddd", "rejected", "not a did:web"),
        (None, "did:web:coves.social%3A8443", "rejected", "usable"),
        ("wrong_id", HOST_DID, "rejected", "id does not match"),
        ("no_aka", HOST_DID, "rejected", "alsoKnownAs"),
        ("missing", HOST_DID, "rejected", "no did.json"),
        ("server_error", HOST_DID, "retry", "fetch failed"),
        ("handle_unverified", HOST_DID, "rejected", "handle is not verified"),
        ("private_host", HOST_DID, "retry", "fetch failed"),
    ],
)
async def test_failures(
    autojump_clock: object, mutate: str | None, hosted_by: str, outcome: str, reason_part: str
) -> None:
    net, verifier = world()
    if mutate == "wrong_id":
        net.web["coves.social"] = did_document("did:web:other.social", also_known_as=[])
    elif mutate == "no_aka":
        net.web["coves.social"] = did_document(HOST_DID, also_known_as=["at://evil.social"])
    elif mutate == "missing":
        del net.web["coves.social"]
    elif mutate == "server_error":
        net.routes["https://coves.social/.well-known/did.json"] = lambda r: httpx.Response(500)
    elif mutate == "handle_unverified":
        net.txt.clear()
    elif mutate == "private_host":
        net.addresses["coves.social"] = ["127.0.0.1"]
    verdict = await verifier.verify(COMMUNITY, hosted_by)
    assert verdict.outcome == outcome
    assert verdict.reason is not None and reason_part in verdict.reason


async def test_community_did_that_does_not_resolve(autojump_clock: object) -> None:
    _net, verifier = world()
    verdict = await verifier.verify("did:plc:eeeeeeeeeeeeeeeeeeeeeeee", HOST_DID)
    assert verdict.outcome == "rejected"


async def test_skip_accepts_without_fetching(autojump_clock: object) -> None:
    net, verifier = world(skip=True)
    assert (await verifier.verify(COMMUNITY, "did:web:anything.example")).verified
    assert net.requests == []


async def test_success_cached_24h_failure_cached_5min(autojump_clock: object) -> None:
    net, verifier = world()
    assert (await verifier.verify(COMMUNITY, HOST_DID)).verified
    await trio.sleep(23 * 3600)
    assert (await verifier.verify(COMMUNITY, HOST_DID)).verified
    assert web_fetches(net) == 1
    await trio.sleep(3601)
    net.web["coves.social"] = did_document(HOST_DID, also_known_as=[])  # host withdrew
    assert (await verifier.verify(COMMUNITY, HOST_DID)).outcome == "rejected"
    assert web_fetches(net) == 2
    net.web["coves.social"] = did_document(HOST_DID, also_known_as=["at://coves.social"])
    await trio.sleep(299)
    assert (await verifier.verify(COMMUNITY, HOST_DID)).outcome == "rejected"  # cached
    await trio.sleep(2)
    assert (await verifier.verify(COMMUNITY, HOST_DID)).verified
    assert web_fetches(net) == 3


async def test_verdict_cache_is_bounded(autojump_clock: object) -> None:
    _net, verifier = world(cache_size=1000)
    from coves.identity.hosted_by import Verdict

    for i in range(1500):
        verifier.cache.set(f"did:web:h{i}.example", Verdict("verified"), 60)
    assert len(verifier.cache) == 1000
    assert verifier.cache.get("did:web:h0.example") is None
    assert verifier.cache.get("did:web:h1499.example") is not None


async def test_token_bucket_paces_fetches(autojump_clock: object) -> None:
    bucket = TokenBucket(10.0, 20)
    start = trio.current_time()
    for _ in range(20):
        await bucket.acquire()
    assert trio.current_time() - start < 0.01  # the burst is free
    for _ in range(50):
        await bucket.acquire()
    elapsed = trio.current_time() - start
    assert 4.9 <= elapsed <= 5.2  # 50 more at 10/s


async def test_verifier_fetches_respect_the_bucket(autojump_clock: object) -> None:
    net = FakeNetwork()
    resolver = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup)
    verifier = HostedByVerifier(resolver, resolver.did_fetcher)
    pairs = []
    for i in range(40):
        did = f"did:plc:{'c' * 22}{chr(ord('a') + i // 26)}{chr(ord('a') + i % 26)}"
        host = f"i{i}.example.com"
        net.add_plc(did, None, f"c.{host}")
        net.web[host] = did_document(f"did:web:{host}", also_known_as=[f"at://{host}"])
        pairs.append((did, f"did:web:{host}"))
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for did, hosted_by in pairs:
            nursery.start_soon(verifier.verify, did, hosted_by)
    assert verifier.fetches == 40
    assert trio.current_time() - start >= 1.9  # 20 burst + 20 at 10/s


async def test_queue_offer_never_blocks_and_dedupes() -> None:
    queue = HostedByQueue(capacity=2)
    assert queue.offer("did:plc:a", HOST_DID)
    assert not queue.offer("did:plc:a", HOST_DID)  # already pending
    assert queue.offer("did:plc:b", HOST_DID)
    assert not queue.offer("did:plc:c", HOST_DID)  # full: dropped, the sweep finds it
    assert queue.dropped == 1
    queue.on_community_needs_verification("did:plc:d", HOST_DID)  # the indexer hook
    assert queue.dropped == 2
    item = queue.receive.receive_nowait()
    queue.done(item[0])
    assert queue.offer("did:plc:c", HOST_DID)
