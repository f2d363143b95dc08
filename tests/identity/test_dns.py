"""The dnspython lookup runs in a worker thread and maps "no answer" to no records."""

from __future__ import annotations

from typing import Any

import dns.resolver
import pytest
import trio

from coves.identity.handle import dns_txt_lookup


class _Rdata:
    def __init__(self, *parts: bytes) -> None:
        self.strings = parts


async def test_txt_strings_are_joined_and_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    def resolve(self: Any, name: str, rdtype: str) -> list[_Rdata]:
        seen.append((name, rdtype))
        return [_Rdata(b"did=did:plc:", b"abc"), _Rdata(b"v=spf1 -all")]

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    with trio.fail_after(5):
        records = await dns_txt_lookup("_atproto.alice.example.com")
    assert records == ["did=did:plc:abc", "v=spf1 -all"]
    assert seen == [("_atproto.alice.example.com", "TXT")]


@pytest.mark.parametrize(
    "error", [dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.LifetimeTimeout]
)
async def test_missing_records_and_timeouts_are_empty(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    def resolve(self: Any, name: str, rdtype: str) -> list[_Rdata]:
        raise error()

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    with trio.fail_after(5):
        assert await dns_txt_lookup("_atproto.nobody.example.com") == []
