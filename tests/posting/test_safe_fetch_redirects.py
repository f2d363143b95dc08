"""Redirects the safe fetcher follows are checked hop by hop (real sockets)."""

from __future__ import annotations

import pytest
import trio

from coves.net import BadStatus, BlockedAddress, FetchTimeout, NotAllowed, SafeFetcher, TooLarge
from tests.support.http_server import Reply, http_server


def moved(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", headers={"location": location})


async def test_redirects_are_followed_up_to_the_limit_and_the_final_url_reported() -> None:
    with trio.fail_after(10):
        async with http_server() as srv:
            srv.route("a.test", "/start", moved("/middle", 301))
            srv.route("a.test", "/middle", moved(srv.url("b.test", "/end"), 307))
            end = srv.route("b.test", "/end", Reply(body=b"<html>end</html>"))
            fetcher = SafeFetcher(resolve=srv.resolve, allow_private=True)
            page = await fetcher.get(srv.url("a.test", "/start"), follow_redirects=3)
            assert (page.url, page.content) == (end, b"<html>end</html>")
            with pytest.raises(BadStatus) as err:
                await fetcher.get(srv.url("a.test", "/start"), follow_redirects=1)
            assert err.value.status == 307
            with pytest.raises(BadStatus):  # the default follows none
                await fetcher.get(srv.url("a.test", "/start"))
            await fetcher.aclose()


async def test_a_redirect_to_a_private_address_is_refused() -> None:
    with trio.fail_after(10):
        async with http_server() as srv:
            srv.route("site.test", "/go", moved(f"http://127.0.0.1:{srv.port}/secret"))
            srv.route("127.0.0.1", "/secret", Reply(body=b"internal"))
            # The first host is trusted (reachable on loopback); its redirect target is not.
            fetcher = SafeFetcher(resolve=srv.resolve, trusted_origins=[srv.url("site.test")])
            with pytest.raises(BlockedAddress):
                await fetcher.get(srv.url("site.test", "/go"), follow_redirects=3)
            assert srv.hits("127.0.0.1") == 0
            await fetcher.aclose()


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://files.test/x", "http://user:pw@b.test/x"]
)
async def test_redirects_to_other_schemes_or_credentials_are_refused(location: str) -> None:
    with trio.fail_after(10):
        async with http_server() as srv:
            srv.route("a.test", "/go", moved(location))
            fetcher = SafeFetcher(resolve=srv.resolve, allow_private=True)
            with pytest.raises(NotAllowed):
                await fetcher.get(srv.url("a.test", "/go"), follow_redirects=3)
            await fetcher.aclose()


# Stopping early drops httpx's nested body generators (see tests/identity/test_safe_fetch.py).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_truncate_keeps_the_beginning_of_a_large_body() -> None:
    with trio.fail_after(10):
        async with http_server() as srv:
            srv.route("a.test", "/big", Reply(body=b"<head>x</head>" + b"y" * 200_000))
            fetcher = SafeFetcher(resolve=srv.resolve, allow_private=True)
            page = await fetcher.get(srv.url("a.test", "/big"), max_bytes=1000, truncate=True)
            assert page.truncated and len(page.content) == 1000
            assert page.content.startswith(b"<head>x</head>")
            with pytest.raises(TooLarge):
                await fetcher.get(srv.url("a.test", "/big"), max_bytes=1000)
            await fetcher.aclose()


async def test_a_per_call_timeout_bounds_a_slow_site() -> None:
    with trio.fail_after(10):
        async with http_server() as srv:
            srv.route("slow.test", "/", Reply(body=b"late", delay=5.0))
            fetcher = SafeFetcher(resolve=srv.resolve, allow_private=True)
            started = trio.current_time()
            with pytest.raises(FetchTimeout):
                await fetcher.get(srv.url("slow.test", "/"), timeout=0.3)
            assert trio.current_time() - started < 2.0
            await fetcher.aclose()
