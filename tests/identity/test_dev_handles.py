"""DEV_HANDLE_DOMAINS against the reference PDS: handles a loopback PDS hands out
(``*.coves.test``, which no DNS or web server resolves) verify by asking the
instance PDS, still both ways; nothing else is asked of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import trio

from coves.atproto.syntax import INVALID_HANDLE
from coves.config import test_settings
from coves.identity import IdentityResolver
from coves.identity.errors import NotFound, ResolutionFailed
from coves.identity.factory import build_fetcher, build_resolver
from coves.net.fetch import SafeFetcher
from tests.support.pds import TestPds


class Recording(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def no_dns(name: str) -> list[str]:
    return []  # nothing resolves *.coves.test, as on a developer's machine


Resolver = Callable[..., IdentityResolver]


@pytest.fixture
async def resolver(pds: TestPds) -> AsyncIterator[Resolver]:
    """Builds resolvers against the test PDS and closes their connections afterwards."""
    fetchers: list[SafeFetcher] = []

    def build(transport: Recording, *, domains: str = "") -> IdentityResolver:
        settings = test_settings(
            plc_url=pds.plc_url,
            pds_url=pds.url,
            dev_handle_domains=tuple(f".{d.lstrip('.')}" for d in domains.split(",") if d),
            allow_private_network_fetch=False,  # the PDS is trusted by name, not by this
        )
        fetchers.append(build_fetcher(settings, transport=transport))
        return build_resolver(settings, None, fetchers[-1], txt_lookup=no_dns)

    yield build
    for fetcher in fetchers:
        await fetcher.aclose()


async def test_handles_of_the_dev_domain_verify_through_the_instance_pds(
    pds: TestPds, resolver: Resolver
) -> None:
    account = await pds.create_account()
    transport = Recording()
    ours = resolver(transport, domains=pds.handle_domain)
    with trio.fail_after(30):
        found = await ours.identity(account.did)
        assert found.handle == account.handle and found.handle_verified
        assert await ours.resolve_actor(account.handle) == found
        assert any("com.atproto.identity.resolveHandle" in url for url in transport.urls)

        # A handle of the domain no account has: not found, and not worth a retry soon.
        with pytest.raises(NotFound):
            await ours.handle_to_did(f"nobody{account.handle}")

        # Handles elsewhere are never asked of the PDS.
        asked = len(transport.urls)
        with pytest.raises(ResolutionFailed):
            await ours.handle_to_did("someone.elsewhere.test")
        assert not any(pds.url in url for url in transport.urls[asked:])

        # Without the setting, the same account shows no handle (nothing resolves it).
        plain = resolver(Recording())
        assert (await plain.identity(account.did)).handle == INVALID_HANDLE


async def test_a_pds_that_does_not_answer_is_a_transient_failure(pds: TestPds) -> None:
    with trio.fail_after(30):
        settings = test_settings(
            plc_url=pds.plc_url,
            pds_url="http://127.0.0.1:9",  # nothing listens: refused at once
            dev_handle_domains=(f".{pds.handle_domain}",),
        )
        fetcher = build_fetcher(settings)
        down = build_resolver(settings, None, fetcher, txt_lookup=no_dns)
        try:
            with pytest.raises(ResolutionFailed) as info:
                await down.handle_to_did(f"someone.{pds.handle_domain}")
            assert not isinstance(info.value, NotFound)  # retried soon, not cached as absent
        finally:
            await fetcher.aclose()
