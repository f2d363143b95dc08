from __future__ import annotations

import httpx
import pytest
import trio

from coves.net import BadStatus, BlockedAddress, FetchTimeout, NotAllowed, SafeFetcher, TooLarge
from coves.net.addresses import is_public_address, literal_address


def fetcher_for(
    handler: httpx.MockTransport, addresses: dict[str, list[str]] | None = None, **kw: object
) -> SafeFetcher:
    table = addresses or {}

    async def resolve(host: str, port: int) -> list[str]:
        return table.get(host, ["93.184.216.34"])

    return SafeFetcher(transport=handler, resolve=resolve, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "192.168.1.1",
        "224.0.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "240.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    addr = literal_address(address)
    assert addr is not None
    assert not is_public_address(addr)


def test_public_addresses_are_allowed() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        addr = literal_address(address)
        assert addr is not None and is_public_address(addr)


async def test_literal_private_ip_is_refused_without_a_request() -> None:
    seen: list[str] = []
    transport = httpx.MockTransport(lambda r: seen.append(str(r.url)) or httpx.Response(200))
    fetcher = fetcher_for(transport)
    with trio.fail_after(5):
        for url in ("http://127.0.0.1/x", "https://[::1]/x", "http://169.254.169.254/latest"):
            with pytest.raises(BlockedAddress):
                await fetcher.get(url)
    assert seen == []


async def test_hostname_with_any_private_address_is_refused() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={}))
    fetcher = fetcher_for(transport, {"evil.example.com": ["93.184.216.34", "10.1.2.3"]})
    with trio.fail_after(5), pytest.raises(BlockedAddress):
        await fetcher.get("https://evil.example.com/.well-known/did.json")


async def test_private_addresses_allowed_in_development_mode() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True}))
    fetcher = fetcher_for(transport, allow_private=True)
    with trio.fail_after(5):
        assert await fetcher.get_json("http://127.0.0.1:2582/x") == {"ok": True}


async def test_the_trusted_origin_bypasses_the_private_rule() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": 1}))
    fetcher = fetcher_for(
        transport, {"plc.internal": ["10.0.0.5"]}, trusted_origins=["https://plc.internal"]
    )
    with trio.fail_after(5):
        assert await fetcher.get_json("https://plc.internal/did:plc:x") == {"ok": 1}


@pytest.mark.parametrize(
    "url",
    [
        "http://plc.internal/did:plc:x",  # same host, port 80
        "https://plc.internal:8443/x",
        "http://localhost:5432/",
        "http://localhost:2583/.well-known/did.json",
    ],
)
async def test_the_trusted_origin_lends_nothing_to_other_ports(url: str) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": 1}))
    fetcher = fetcher_for(
        transport,
        {"plc.internal": ["10.0.0.5"], "localhost": ["127.0.0.1"]},
        trusted_origins=["https://plc.internal", "http://localhost:2582"],
    )
    with trio.fail_after(5), pytest.raises(BlockedAddress):
        await fetcher.get(url)


async def test_redirects_are_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://127.0.0.1/secret"})

    fetcher = fetcher_for(httpx.MockTransport(handler))
    with trio.fail_after(5), pytest.raises(BadStatus) as info:
        await fetcher.get("https://example.com/.well-known/did.json")
    assert info.value.status == 302
    assert seen == ["https://example.com/.well-known/did.json"]


# httpx's nested body generators are dropped (not aclosed) when reading stops early;
# the response itself is closed by the client's context manager.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_body_larger_than_cap_is_refused_while_streaming() -> None:
    sent = 0

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def,override]
            nonlocal sent
            for _ in range(100):
                sent += 1
                yield b"x" * 1024

    fetcher = fetcher_for(
        httpx.MockTransport(lambda r: httpx.Response(200, stream=Body())), max_bytes=10_000
    )
    with trio.fail_after(5), pytest.raises(TooLarge):
        await fetcher.get("https://example.com/big")
    assert sent < 15  # reading stopped near the cap, not at the end of the body


async def test_declared_length_over_cap_is_refused() -> None:
    fetcher = fetcher_for(
        httpx.MockTransport(lambda r: httpx.Response(200, content=b"y" * 5000)), max_bytes=1000
    )
    with trio.fail_after(5), pytest.raises(TooLarge):
        await fetcher.get("https://example.com/big")


async def test_slow_server_hits_the_overall_deadline() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await trio.sleep(10)
        return httpx.Response(200)

    fetcher = fetcher_for(httpx.MockTransport(handler), total_timeout=0.2)
    with trio.fail_after(5), pytest.raises(FetchTimeout):
        await fetcher.get("https://example.com/slow")


async def test_bad_schemes_and_credentials_are_refused() -> None:
    fetcher = fetcher_for(httpx.MockTransport(lambda r: httpx.Response(200)))
    with trio.fail_after(5):
        for url in ("ftp://example.com/x", "file:///etc/passwd", "https://u:p@example.com/x"):
            with pytest.raises(NotAllowed):
                await fetcher.get(url)


async def test_slow_dns_counts_against_the_deadline() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        await trio.sleep(10)
        return ["93.184.216.34"]

    fetcher = SafeFetcher(
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        resolve=resolve,
        total_timeout=0.2,
    )
    with trio.fail_after(5), pytest.raises(FetchTimeout):
        await fetcher.get("https://slow-dns.example.com/x")


async def test_bad_port_is_refused() -> None:
    fetcher = fetcher_for(httpx.MockTransport(lambda r: httpx.Response(200)))
    with trio.fail_after(5), pytest.raises(NotAllowed):
        await fetcher.get("https://example.com:99999/x")
