"""An httpx client wrapper for fetching URLs that users control.

Bounded in every dimension an attacker controls: which address is contacted
(public only, checked for every resolved address, and enforced again at
connect time so DNS rebinding between check and connect does not help), how
long it takes (short connect/read timeouts plus an overall deadline), and
how much is read (the body is streamed and reading stops at the cap).
Redirects are not followed unless the caller asks for a bounded number, and
then every hop is checked again as if it were the first URL (scheme,
credentials, public addresses), all within the one overall deadline.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import orjson
import trio

from coves.net.addresses import HostResolver, checked_addresses, system_resolve
from coves.net.errors import (
    BadResponse,
    BadStatus,
    FetchError,
    FetchTimeout,
    NotAllowed,
    TooLarge,
    Unreachable,
)

DEFAULT_MAX_BYTES = 256 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "coves-appview (+https://github.com/coves-social)"


@dataclass(frozen=True)
class FetchResponse:
    url: str  # the URL that answered (the last hop when redirects were followed)
    status: int
    headers: Mapping[str, str]
    content: bytes
    truncated: bool = False  # the body was cut at the size cap (``truncate=True``)

    def json(self) -> Any:
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            raise BadResponse(f"{self.url} did not return JSON") from None

    def text(self) -> str:
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            raise BadResponse(f"{self.url} did not return UTF-8 text") from None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses that passed the public-address check.

    The host is resolved here, checked, and the socket opened to the checked
    IP itself, so a second lookup by the connection layer cannot return a
    different (private) answer.
    """

    def __init__(
        self, resolve: HostResolver, allow_private: bool, trusted: frozenset[tuple[str, int]]
    ):
        from httpcore._backends.trio import TrioBackend

        self._inner = TrioBackend()
        self._resolve = resolve
        self._allow_private = allow_private
        self._trusted = trusted

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(
            host,
            port,
            self._resolve,
            allow_private=self._allow_private or (host.lower(), port) in self._trusted,
        )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotAllowed("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    resolve: HostResolver,
    *,
    allow_private: bool,
    trusted: frozenset[tuple[str, int]] = frozenset(),
) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(retries=0)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(),
        max_connections=50,
        max_keepalive_connections=20,
        keepalive_expiry=30.0,
        network_backend=_GuardedBackend(resolve, allow_private, trusted),
    )
    return transport


class SafeFetcher:
    """GET requests to untrusted hosts. One instance per process; share it.

    ``transport`` is injectable (tests pass ``httpx.MockTransport``); the
    address check still runs against ``resolve`` in that case, so refusal of
    private addresses is testable without a network. ``trusted_origins`` are
    operator-configured hosts (e.g. the PLC directory) exempt from the
    private-address rule, by origin: the exemption covers that host on that port
    alone, so a URL from user input (a did:web naming ``localhost:<port>``) that
    shares the host name cannot reach anything else on it.
    """

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolve: HostResolver = system_resolve,
        allow_private: bool = False,
        trusted_origins: Iterable[str] = (),
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        total_timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._resolve = resolve
        self._allow_private = allow_private
        self._trusted = frozenset(
            origin for url in trusted_origins if (origin := _origin(url)) is not None
        )
        self._total_timeout = total_timeout
        self.max_bytes = max_bytes
        if transport is None:
            transport = guarded_transport(
                resolve, allow_private=allow_private, trusted=self._trusted
            )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        accept: str = "application/json",
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: int = 0,
        truncate: bool = False,
        timeout: float | None = None,
    ) -> FetchResponse:
        """Fetch ``url``; raise a :class:`FetchError` subclass on any failure or non-2xx.

        ``follow_redirects``: at most this many redirects are followed, each
        target checked like the first URL. ``truncate``: a body larger than
        the cap is cut there (``FetchResponse.truncated``) instead of refused,
        for callers that only need its beginning (an HTML head). ``timeout``:
        an overall deadline shorter than the fetcher's own.
        """
        request_headers = {"Accept": accept, "Accept-Encoding": "identity", **(headers or {})}
        return await self._guarded(
            "GET",
            url,
            request_headers,
            None,
            max_bytes,
            any_status=False,
            follow_redirects=follow_redirects,
            truncate=truncate,
            timeout=timeout,
        )

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        max_bytes: int | None = None,
    ) -> FetchResponse:
        """One request of any method with the same guards as :meth:`get`.

        Every status is returned rather than raised: protocols such as OAuth
        put the information the caller needs (``use_dpop_nonce``, error
        codes) in non-2xx answers. Transport failures still raise.
        """
        request_headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        request_headers.update(headers or {})
        return await self._guarded(
            method, url, request_headers, content, max_bytes, any_status=True
        )

    async def _guarded(
        self,
        method: str,
        url: str,
        request_headers: dict[str, str],
        content: bytes | None,
        max_bytes: int | None,
        *,
        any_status: bool,
        follow_redirects: int = 0,
        truncate: bool = False,
        timeout: float | None = None,
    ) -> FetchResponse:
        limit = self.max_bytes if max_bytes is None else max_bytes
        total = self._total_timeout if timeout is None else min(timeout, self._total_timeout)
        try:
            with trio.fail_after(total):
                hops = 0
                while True:
                    await self._check(url)
                    response = await self._request(
                        method,
                        url,
                        request_headers,
                        content,
                        limit,
                        any_status=any_status,
                        truncate=truncate,
                    )
                    if any_status or response.status not in REDIRECT_STATUSES:
                        return response
                    location = response.headers.get("location")
                    if hops >= follow_redirects or not location:
                        raise BadStatus(response.status, url)
                    hops += 1
                    url = urljoin(url, location)  # checked again, like the first URL
        except trio.TooSlowError:
            raise FetchTimeout(f"{url} took longer than {total}s") from None
        except httpx.TimeoutException:
            raise FetchTimeout(f"{url} timed out") from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"{url}: {type(exc).__name__}") from None

    async def _check(self, url: str) -> None:
        """Refuse anything but an absolute http(s) URL to public addresses."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotAllowed(f"only absolute http(s) URLs may be fetched: {url!r}")
        if parts.username is not None or parts.password is not None:
            raise NotAllowed("URLs with credentials are not fetched")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise NotAllowed(f"bad port in {url!r}") from None
        await checked_addresses(
            host,
            port,
            self._resolve,
            allow_private=self._allow_private or (host.lower(), port) in self._trusted,
        )

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        limit: int,
        *,
        any_status: bool,
        truncate: bool = False,
    ) -> FetchResponse:
        async with self._client.stream(method, url, headers=headers, content=content) as response:
            status = response.status_code
            if not any_status and status in REDIRECT_STATUSES:
                return FetchResponse(url, status, dict(response.headers), b"")
            if not any_status and not 200 <= status < 300:
                raise BadStatus(status, url)
            declared = response.headers.get("content-length")
            if (
                not truncate
                and declared is not None
                and declared.isdigit()
                and int(declared) > limit
            ):
                raise TooLarge(f"{url} declares {declared} bytes (limit {limit})")
            chunks: list[bytes] = []
            size = 0
            cut = False
            body_iter = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
            async with aclosing(body_iter) as body_chunks:
                async for chunk in body_chunks:
                    if size + len(chunk) > limit:
                        if not truncate:
                            raise TooLarge(f"{url} sent more than {limit} bytes")
                        chunks.append(chunk[: limit - size])
                        cut = True
                        break
                    size += len(chunk)
                    chunks.append(chunk)
            return FetchResponse(url, status, dict(response.headers), b"".join(chunks), cut)

    async def get_json(self, url: str, *, max_bytes: int | None = None) -> Any:
        return (await self.get(url, max_bytes=max_bytes)).json()


def _origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an operator-configured URL, the default port filled in."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return parts.hostname.lower(), port


__all__ = ["FetchError", "FetchResponse", "SafeFetcher", "guarded_transport"]
