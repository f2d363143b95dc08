"""Rate limits: classes, headers, windows on Trio's clock, and who the client is."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import trio
import trio.testing

from coves.xrpc.ratelimit import LimitClass, MemoryStore, RateLimiter, client_address
from tests.foundation.conftest import offline_context
from tests.foundation.test_http import make_app

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def headers_of(values: dict[str, str]):  # type: ignore[no-untyped-def]
    lowered = {k.lower(): v for k, v in values.items()}
    return lowered.get


def test_untrusted_peer_forwarding_headers_are_ignored() -> None:
    spoofed = headers_of({"X-Forwarded-For": "1.2.3.4", "X-Real-IP": "5.6.7.8"})
    assert client_address("198.51.100.7", spoofed, TRUSTED) == "198.51.100.7"


def test_trusted_proxy_takes_rightmost_untrusted_hop() -> None:
    chain = headers_of({"X-Forwarded-For": "6.6.6.6, 198.51.100.20, 10.1.1.1"})
    # 6.6.6.6 was written by the client; 198.51.100.20 connected to our proxy chain.
    assert client_address("10.0.0.2", chain, TRUSTED) == "198.51.100.20"


def test_trusted_proxy_falls_back_to_real_ip_then_peer() -> None:
    assert client_address("10.0.0.2", headers_of({"X-Real-IP": "203.0.113.5"}), TRUSTED) == (
        "203.0.113.5"
    )
    assert client_address("10.0.0.2", headers_of({}), TRUSTED) == "10.0.0.2"


def test_garbage_hop_stops_belief() -> None:
    chain = headers_of({"X-Forwarded-For": "203.0.113.1, not-an-ip, 10.0.0.9"})
    # Nothing left of the garbage can be believed: the closest trusted hop is used.
    assert client_address("10.0.0.2", chain, TRUSTED) == "10.0.0.9"


def test_ipv6_and_mapped_addresses_and_ports() -> None:
    none = headers_of({})
    assert client_address("2001:db8::1", none, TRUSTED) == "2001:db8::1"
    assert client_address("::ffff:198.51.100.7", none, TRUSTED) == "198.51.100.7"
    chain = headers_of({"X-Forwarded-For": "[2001:db8::5]:4711, fd00::1"})
    assert client_address("fd00::2", chain, TRUSTED) == "2001:db8::5"
    v4_port = headers_of({"X-Forwarded-For": "198.51.100.8:5555"})
    assert client_address("10.0.0.2", v4_port, TRUSTED) == "198.51.100.8"


def test_fixed_window_counts_and_resets() -> None:
    now = [100.0]
    limiter = RateLimiter([LimitClass("general", 3, 60.0)], MemoryStore(), clock=lambda: now[0])
    decisions = [limiter.check("general", "a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after == 60
    assert limiter.check("general", "b").allowed  # per client
    now[0] += 30
    assert limiter.check("general", "a").retry_after == 30
    now[0] += 30
    assert limiter.check("general", "a").allowed


def test_memory_store_sweeps_expired_windows() -> None:
    store = MemoryStore()
    for i in range(50):
        store.hit(f"k{i}", 10.0, 0.0)
    assert len(store) == 50
    store.hit("late", 10.0, 20.0)
    assert len(store) == 1


async def test_http_429_headers_and_window_reset(autojump_clock: trio.testing.MockClock) -> None:
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(rate_limit_general=3))
    app, _ = make_app(ctx)
    client = app.test_client()
    peer = {"client": ("198.51.100.1", 1111)}
    for _ in range(3):
        ok = await client.get("/xrpc/test.echo", scope_base=peer)
        assert ok.status_code == 200
    refused = await client.get("/xrpc/test.echo", scope_base=peer)
    assert refused.status_code == 429
    assert (await refused.get_json())["error"] == "RateLimitExceeded"
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Policy"] == "3;w=60"
    # Another port of the same address is the same client.
    other_port = await client.get("/xrpc/test.echo", scope_base={"client": ("198.51.100.1", 2222)})
    assert other_port.status_code == 429
    # A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    spoofed = await client.get(
        "/xrpc/test.echo", headers={"X-Forwarded-For": "9.9.9.9"}, scope_base=peer
    )
    assert spoofed.status_code == 429
    assert 'coves_rate_limited_total{limit="general"}' in ctx.metrics.render().decode()
    await trio.sleep(60)
    again = await client.get("/xrpc/test.echo", scope_base=peer)
    assert again.status_code == 200


async def test_http_trusted_proxy_keys_on_forwarded_client() -> None:
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(rate_limit_general=1, trusted_proxies=TRUSTED))
    app, _ = make_app(ctx)
    client = app.test_client()
    proxy = {"client": ("10.0.0.2", 443)}
    first = await client.get(
        "/xrpc/test.echo", headers={"X-Forwarded-For": "198.51.100.1"}, scope_base=proxy
    )
    second = await client.get(
        "/xrpc/test.echo", headers={"X-Forwarded-For": "198.51.100.2"}, scope_base=proxy
    )
    repeat = await client.get(
        "/xrpc/test.echo", headers={"X-Forwarded-For": "198.51.100.1"}, scope_base=proxy
    )
    assert [first.status_code, second.status_code, repeat.status_code] == [200, 200, 429]


async def test_comments_class_applies_on_top_of_general() -> None:
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(rate_limit_general=5, rate_limit_comments=2))
    app, _ = make_app(ctx)
    client = app.test_client()
    peer = {"client": ("198.51.100.3", 1)}
    statuses = [
        (await client.get("/xrpc/test.comments", scope_base=peer)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = await client.get("/xrpc/test.comments", scope_base=peer)
    assert limited.headers["RateLimit-Policy"] == "2;w=60"
    # The comment requests also spent the general budget (4 of 5 used).
    general = await client.get("/xrpc/test.echo", scope_base=peer)
    assert general.status_code == 200
    assert general.headers["RateLimit-Remaining"] == "0"
    assert (await client.get("/xrpc/test.echo", scope_base=peer)).status_code == 429
    # Operational endpoints are exempt.
    assert (await client.get("/metrics", scope_base=peer)).status_code == 200
