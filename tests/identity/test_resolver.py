from __future__ import annotations

import pytest
import trio

from coves.atproto.keys import PrivateKey
from coves.atproto.syntax import INVALID_HANDLE
from coves.db import Database
from coves.identity import (
    BadDocument,
    IdentityResolver,
    InvalidIdentifier,
    NotFound,
    ResolutionFailed,
    UnsupportedMethod,
)
from coves.identity.did import did_web_url
from coves.identity.handle import did_from_txt
from tests.support.fake_did import PLC_URL, FakeNetwork, did_document

ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"


def make(net: FakeNetwork, db: Database | None = None, **kw: float) -> IdentityResolver:
    return IdentityResolver(
        fetcher=net.fetcher(), plc_url=PLC_URL, db=db, txt_lookup=net.txt_lookup, **kw
    )


@pytest.mark.parametrize("curve", ["k256", "p256"])
@pytest.mark.parametrize("legacy", [False, True])
async def test_plc_document_yields_handle_pds_and_key(curve: str, legacy: bool) -> None:
    net = FakeNetwork()
    key = PrivateKey.generate(curve)  # type: ignore[arg-type]
    net.add_plc(ALICE, key, "alice.example.com", legacy_key=legacy)
    with trio.fail_after(5):
        ident = await make(net).identity(ALICE)
    assert ident.handle == "alice.example.com"
    assert ident.pds_url == "https://pds.test"
    assert ident.signing_key is not None
    assert ident.signing_key.compressed() == key.public().compressed()


async def test_handle_over_https_when_dns_has_nothing() -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com", dns=False)
    with trio.fail_after(5):
        ident = await make(net).resolve_actor("Alice.Example.COM")
    assert ident.did == ALICE and ident.handle == "alice.example.com"


async def test_dns_wins_when_dns_and_https_disagree() -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com")
    net.atproto_did["alice.example.com"] = BOB
    with trio.fail_after(5):
        assert await make(net).handle_to_did("alice.example.com") == ALICE


async def test_dns_and_https_agreeing() -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com")
    net.atproto_did["alice.example.com"] = ALICE
    with trio.fail_after(5):
        assert (await make(net).identity(ALICE)).handle == "alice.example.com"


def test_more_than_one_txt_record_is_ambiguous() -> None:
    assert did_from_txt([f"did={ALICE}", f"did={BOB}"]) is None
    assert did_from_txt([f"did={ALICE}", "v=spf1 -all", f"did={ALICE}"]) == ALICE
    assert did_from_txt(["did=not-a-did"]) is None


async def test_multiple_txt_records_fall_back_to_https_or_fail() -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com")
    net.txt["_atproto.alice.example.com"] = [f"did={ALICE}", f"did={BOB}"]
    with trio.fail_after(5):
        ident = await make(net).identity(ALICE)
    assert ident.handle == INVALID_HANDLE


async def test_handle_not_claimed_back_is_invalid() -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com")
    net.txt["_atproto.alice.example.com"] = [f"did={BOB}"]  # handle points elsewhere
    net.add_plc(BOB, None, "bob.example.com")
    resolver = make(net)
    with trio.fail_after(5):
        assert (await resolver.identity(ALICE)).handle == INVALID_HANDLE
        with pytest.raises(NotFound):
            await resolver.resolve_actor("alice.example.com")


async def test_document_id_must_match() -> None:
    net = FakeNetwork()
    net.plc[ALICE] = did_document(BOB)
    with trio.fail_after(5), pytest.raises(BadDocument):
        await make(net).document(ALICE)


async def test_unknown_did_and_bad_identifiers() -> None:
    net = FakeNetwork()
    resolver = make(net)
    with trio.fail_after(5):
        with pytest.raises(NotFound):
            await resolver.document(ALICE)
        with pytest.raises(InvalidIdentifier):
            await resolver.document("did:plc:short")
        with pytest.raises(UnsupportedMethod):
            await resolver.document("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme")
        with pytest.raises(InvalidIdentifier):
            await resolver.resolve_actor("bob.localhost")
        with pytest.raises(UnsupportedMethod):
            await resolver.document("did:web:example.com:user:alice")


def test_did_web_urls() -> None:
    assert did_web_url("did:web:Example.com") == "https://example.com/.well-known/did.json"
    assert did_web_url("did:web:localhost%3A8080") == "http://localhost:8080/.well-known/did.json"
    with pytest.raises(InvalidIdentifier):
        did_web_url("did:web:example.com%3A8443")


async def test_did_web_document_and_private_refusal() -> None:
    net = FakeNetwork()
    net.web["community.example"] = did_document("did:web:community.example")
    net.addresses["internal.example"] = ["10.0.0.7"]
    net.web["internal.example"] = did_document("did:web:internal.example")
    resolver = make(net)
    with trio.fail_after(5):
        doc = await resolver.document("did:web:community.example")
        assert doc.did == "did:web:community.example"
        with pytest.raises(ResolutionFailed):
            await resolver.document("did:web:internal.example")


async def test_memory_cache_ttl_and_negative_ttl(autojump_clock: object) -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, "alice.example.com")
    resolver = make(net, ttl=100.0, negative_ttl=10.0)
    await resolver.document(ALICE)
    await resolver.document(ALICE)
    assert len(net.requests) == 1
    await trio.sleep(101)
    await resolver.document(ALICE)
    assert len(net.requests) == 2

    with pytest.raises(NotFound):
        await resolver.document(BOB)
    net.add_plc(BOB, None, None)
    with pytest.raises(NotFound):  # negative entry still fresh
        await resolver.document(BOB)
    await trio.sleep(11)
    assert (await resolver.document(BOB)).did == BOB


async def test_force_refresh_and_purge_bypass_the_cache() -> None:
    net = FakeNetwork()
    old, new = PrivateKey.generate(), PrivateKey.generate()
    net.add_plc(ALICE, old, "alice.example.com")
    resolver = make(net)
    with trio.fail_after(5):
        first = await resolver.document(ALICE)
        net.add_plc(ALICE, new, "alice2.example.com")
        assert (await resolver.document(ALICE)).signing_key == first.signing_key
        rotated = await resolver.document(ALICE, force_refresh=True)
        assert rotated.signing_key is not None
        assert rotated.signing_key.compressed() == new.public().compressed()
        net.add_plc(ALICE, new, "alice3.example.com")
        await resolver.on_identity_change([ALICE])
        assert (await resolver.identity(ALICE)).handle == "alice3.example.com"


async def test_postgres_cache_is_shared_and_purged(db: Database) -> None:
    with trio.fail_after(30):
        net = FakeNetwork()
        net.add_plc(ALICE, PrivateKey.generate(), "alice.example.com")
        await make(net, db).identity(ALICE)
        fetched = len(net.requests)
        other = make(net, db)  # a second process: empty memory, same database
        ident = await other.identity(ALICE)
        assert ident.handle == "alice.example.com"
        assert len(net.requests) == fetched and len(net.dns_queries) == 1
        await other.purge(ALICE)
        assert await db.fetchval("SELECT count(*) FROM identity_cache") == 0
        await make(net, db).identity(ALICE)
        assert len(net.requests) == fetched + 1


async def test_postgres_negative_entries(db: Database) -> None:
    with trio.fail_after(30):
        net = FakeNetwork()
        with pytest.raises(NotFound):
            await make(net, db).document(ALICE)
        net.add_plc(ALICE, None, None)
        with pytest.raises(NotFound):
            await make(net, db).document(ALICE)
        assert len(net.requests) == 1


async def test_concurrent_misses_share_one_fetch() -> None:
    net = FakeNetwork(latency=0.05)  # lookups overlap
    net.add_plc(ALICE, None, "alice.example.com")
    resolver = make(net)
    results: list[str] = []

    async def one() -> None:
        results.append((await resolver.identity(ALICE)).handle)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(one)
    assert results == ["alice.example.com"] * 20
    assert len(net.requests) == 1 and len(net.dns_queries) == 1


async def test_concurrent_failures_share_one_fetch() -> None:
    net = FakeNetwork(latency=0.05)
    resolver = make(net)
    failures: list[str] = []

    async def one() -> None:
        try:
            await resolver.document(ALICE)
        except NotFound as exc:
            failures.append(exc.reason)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(one)
    assert failures == ["not_found"] * 10 and len(net.requests) == 1


async def test_transient_failures_are_cached_briefly(autojump_clock: object) -> None:
    import httpx

    net = FakeNetwork()
    net.routes[f"{PLC_URL}/{ALICE}"] = lambda r: httpx.Response(503)
    resolver = make(net, negative_ttl=300.0)
    with pytest.raises(ResolutionFailed) as info:
        await resolver.document(ALICE)
    assert not isinstance(info.value, NotFound)
    del net.routes[f"{PLC_URL}/{ALICE}"]
    net.add_plc(ALICE, None, None)
    await trio.sleep(31)  # well inside the 5 min negative TTL, past the transient cap
    assert (await resolver.document(ALICE)).did == ALICE


async def test_forced_refreshes_are_rate_limited_per_did(autojump_clock: object) -> None:
    net = FakeNetwork()
    net.add_plc(ALICE, None, None)
    resolver = make(net)
    await resolver.document(ALICE)
    await resolver.document(ALICE, force_refresh=True)
    await resolver.document(ALICE, force_refresh=True)  # within 30 s: served from cache
    assert len(net.requests) == 2
    await trio.sleep(31)
    await resolver.document(ALICE, force_refresh=True)
    assert len(net.requests) == 3


async def test_lookups_are_counted_by_source(db: Database) -> None:
    from coves.metrics import Metrics

    metrics = Metrics()
    net = FakeNetwork()
    net.add_plc(ALICE, None, None)
    with trio.fail_after(20):
        first = IdentityResolver(
            fetcher=net.fetcher(),
            plc_url=PLC_URL,
            db=db,
            txt_lookup=net.txt_lookup,
            metrics=metrics,
        )
        await first.document(ALICE)
        await first.document(ALICE)
        with pytest.raises(NotFound):
            await first.document(BOB)
        second = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL, db=db, metrics=metrics)
        await second.document(ALICE)

    def count(source: str) -> float | None:
        return metrics.registry.get_sample_value(
            "coves_identity_lookups_total", {"kind": "did", "source": source}
        )

    assert (count("network"), count("memory"), count("database")) == (1.0, 1.0, 1.0)
    assert count("network_not_found") == 1.0
