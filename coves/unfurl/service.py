"""Fetching link cards, thumbnails and quoted Bluesky posts, within limits.

Everything goes through the safe fetcher (public addresses only, redirects
re-checked hop by hop, size caps, deadlines). Each provider has its own
circuit breaker on Trio's clock: after ``breaker_threshold`` consecutive
failures (timeouts, connection errors, 5xx) the provider is skipped for
``breaker_cooldown`` seconds, then one probe decides. So a slow site costs
the first few posts that link to it one deadline each, and nothing after
that: posting never waits on a site known to be failing. Results, failures
included (briefly), are cached in the database, shared by every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import trio

from coves import clock
from coves.atproto.syntax import is_valid_cid
from coves.breaker import BreakerState, CircuitBreaker
from coves.db import Database, DatabaseError
from coves.db.queries import link_cards as q
from coves.logs import get_logger
from coves.media.images import ImageInfo, ImageLimits, ImageRejected, inspect_image
from coves.metrics import Metrics
from coves.net import BadStatus, FetchError, FetchTimeout, NotAllowed, SafeFetcher, Unreachable
from coves.ttlcache import ExpiringLRU
from coves.unfurl.oembed import parse_oembed
from coves.unfurl.opengraph import PageMeta, decode_html, parse_page
from coves.unfurl.providers import (
    DEFAULT_OEMBED,
    BlueskyPost,
    OEmbedProvider,
    Route,
    normalize_url,
    route,
)

log = get_logger(__name__)

HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
IMAGE_ACCEPT = "image/webp,image/png,image/jpeg,image/*;q=0.5"
BREAKERS_MAX = 5_000  # providers remembered (sites for OpenGraph); the oldest are forgotten
_MISS = object()


@dataclass(frozen=True)
class LinkCard:
    """What a page says about itself, ready to fill an external embed."""

    url: str
    provider: str
    title: str | None = None
    description: str | None = None
    image: str | None = None  # absolute URL of the preview image
    embed_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "image": self.image,
            "embedType": self.embed_type,
        }

    @classmethod
    def from_json(cls, url: str, provider: str, data: dict[str, Any]) -> LinkCard:
        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        return cls(
            url=url,
            provider=provider,
            title=text("title"),
            description=text("description"),
            image=text("image"),
            embed_type=text("embedType"),
        )


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    info: ImageInfo


@dataclass(frozen=True)
class QuotedPost:
    uri: str
    cid: str


class _ProviderDown(Exception):
    """The provider's breaker is open: skipped without a request."""


class Unfurler:
    def __init__(
        self,
        fetcher: SafeFetcher,
        *,
        db: Database | None = None,
        metrics: Metrics | None = None,
        oembed: Sequence[OEmbedProvider] = DEFAULT_OEMBED,
        timeout: float = 4.0,
        page_bytes: int = 512 * 1024,
        max_redirects: int = 5,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 300.0,
        ttl: float = 86_400.0,
        failure_ttl: float = 600.0,
    ) -> None:
        self._fetcher = fetcher
        self._db = db
        self._oembed = tuple(oembed)
        self.timeout = timeout
        self._page_bytes = page_bytes
        self._max_redirects = max_redirects
        self._threshold = breaker_threshold
        self._cooldown = breaker_cooldown
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._breakers: ExpiringLRU[str, CircuitBreaker] = ExpiringLRU(BREAKERS_MAX)
        self._outcomes = (
            metrics.counter(
                "coves_link_cards_total",
                "link card lookups by provider kind, source and outcome",
                ["kind", "source", "outcome"],
            )
            if metrics is not None
            else None
        )
        self._opened = (
            metrics.counter(
                "coves_link_card_breaker_opened_total",
                "times a link-card provider's circuit breaker opened, by provider kind",
                ["kind"],
            )
            if metrics is not None
            else None
        )

    # -- breakers ---------------------------------------------------------------------
    def breaker(self, key: str) -> CircuitBreaker:
        """The breaker of one provider (created closed on first use)."""
        breaker = self._breakers.get(key)
        if breaker is None:
            kind = key.split(":", 1)[0]

            def opened(old: BreakerState, new: BreakerState) -> None:
                if new is BreakerState.OPEN:
                    log.warning("link card provider failing; skipped for a while", provider=key)
                    if self._opened is not None:
                        self._opened.labels(kind).inc()

            breaker = CircuitBreaker(
                threshold=self._threshold, cooldown=self._cooldown, on_change=opened
            )
        # Touched on every use, so a provider is forgotten only when unused for a day.
        self._breakers.set(key, breaker, max(86_400.0, self._cooldown))
        return breaker

    async def _guarded_get(
        self, key: str, url: str, *, accept: str, max_bytes: int, truncate: bool, timeout: float
    ) -> Any:
        breaker = self.breaker(key)
        if not breaker.allow():
            raise _ProviderDown(key)
        try:
            response = await self._fetcher.get(
                url,
                accept=accept,
                max_bytes=max_bytes,
                truncate=truncate,
                follow_redirects=self._max_redirects,
                timeout=timeout,
            )
        except (FetchTimeout, Unreachable) as exc:
            breaker.record_failure()
            raise exc
        except BadStatus as exc:
            if exc.status >= 500 or exc.status == 429:
                breaker.record_failure()
            else:  # the provider answered: it is up, the page just is not there
                breaker.record_success()
            raise exc
        except BaseException:  # refused before any request, or cancelled: says nothing
            breaker.release()
            raise
        breaker.record_success()
        return response

    def _count(self, kind: str, source: str, outcome: str) -> None:
        if self._outcomes is not None:
            self._outcomes.labels(kind, source, outcome).inc()

    # -- cards ------------------------------------------------------------------------
    async def card(self, url: str, *, timeout: float | None = None) -> LinkCard | None:
        """The card for ``url``, or None when it cannot be described (now)."""
        normalized = normalize_url(url)
        if normalized is None:
            return None
        where = route(normalized, self._oembed)
        cached = await self._cached(normalized)
        if cached is not _MISS:
            self._count(where.kind, "cache", "card" if cached is not None else "none")
            return cached if isinstance(cached, LinkCard) else None
        budget = self.timeout if timeout is None else min(timeout, self.timeout)
        try:
            meta = await self._describe(normalized, where, budget)
        except _ProviderDown:
            self._count(where.kind, "fetch", "breaker_open")
            return None
        except (FetchError, ValueError) as exc:
            transient = isinstance(exc, FetchTimeout | Unreachable) or (
                isinstance(exc, BadStatus) and (exc.status >= 500 or exc.status == 429)
            )
            self._count(where.kind, "fetch", "failed")
            log.info("link card unavailable", provider=where.provider, reason=str(exc)[:200])
            if not transient and not isinstance(exc, NotAllowed):
                await self._store(normalized, where.provider, None, str(exc)[:500])
            return None
        card = LinkCard(
            url=normalized,
            provider=meta.site_name.lower()
            if where.kind == "oembed" and meta.site_name
            else where.provider,
            title=meta.title,
            description=meta.description,
            image=meta.image,
            embed_type=meta.kind if where.kind == "oembed" else _embed_type(meta),
        )
        if card.title is None and card.description is None and card.image is None:
            self._count(where.kind, "fetch", "none")
            await self._store(normalized, where.provider, None, "nothing to show")
            return None
        self._count(where.kind, "fetch", "card")
        await self._store(normalized, card.provider, card, None)
        return card

    async def _describe(self, url: str, where: Route, timeout: float) -> PageMeta:
        if where.oembed is not None:
            query = urlencode({"url": url, "format": "json"})
            response = await self._guarded_get(
                where.breaker_key,
                f"{where.oembed.endpoint}?{query}",
                accept="application/json",
                max_bytes=64 * 1024,
                truncate=False,
                timeout=timeout,
            )
            return parse_oembed(response.json(), url)
        response = await self._guarded_get(
            where.breaker_key,
            url,
            accept=HTML_ACCEPT,
            max_bytes=self._page_bytes,
            truncate=True,
            timeout=timeout,
        )
        content_type = response.headers.get("content-type", "")
        if content_type.lower().startswith("image/"):
            # A link straight to an image: the image is its own preview.
            return PageMeta(image=response.url, kind="image")
        html = await trio.to_thread.run_sync(decode_html, response.content, content_type)
        return await trio.to_thread.run_sync(parse_page, html, response.url)

    async def _cached(self, url: str) -> LinkCard | object | None:
        """The cached card, None for a cached failure, ``_MISS`` when not cached."""
        if self._db is None:
            return _MISS
        try:
            row = await q.get(self._db, url, clock.utcnow())
        except DatabaseError as exc:
            log.warning("link card cache unavailable", error=repr(exc))
            return _MISS
        if row is None:
            return _MISS
        card = row["card"]
        if not isinstance(card, dict):
            return None
        return LinkCard.from_json(url, row["provider"], card)

    async def _store(
        self, url: str, provider: str, card: LinkCard | None, error: str | None
    ) -> None:
        if self._db is None:
            return
        now = clock.utcnow()
        ttl = self._ttl if card is not None else self._failure_ttl
        try:
            await q.put(
                self._db,
                url,
                provider=provider,
                card=card.to_json() if card is not None else None,
                error=error,
                now=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        except DatabaseError as exc:
            log.warning("link card cache unavailable", error=repr(exc))

    # -- thumbnails -------------------------------------------------------------------
    async def thumbnail(
        self, url: str, limits: ImageLimits, *, timeout: float | None = None
    ) -> Thumbnail | None:
        """The image at ``url`` if it is one ``limits`` accept; None otherwise."""
        normalized = normalize_url(url)
        if normalized is None:
            return None
        host = (urlsplit(normalized).hostname or "").lower()
        budget = self.timeout if timeout is None else min(timeout, self.timeout)
        try:
            response = await self._guarded_get(
                f"site:{host}",
                normalized,
                accept=IMAGE_ACCEPT,
                max_bytes=limits.max_bytes,
                truncate=False,
                timeout=budget,
            )
        except (_ProviderDown, FetchError) as exc:
            log.info("thumbnail unavailable", reason=str(exc)[:200])
            self._count("thumbnail", "fetch", "failed")
            return None
        try:
            info = await trio.to_thread.run_sync(inspect_image, response.content, limits)
        except ImageRejected as exc:
            log.info("thumbnail refused", reason=exc.message)
            self._count("thumbnail", "fetch", "refused")
            return None
        self._count("thumbnail", "fetch", "card")
        return Thumbnail(response.content, info)

    # -- quoted Bluesky posts -----------------------------------------------------------
    async def quoted_post(
        self, post: BlueskyPost, pds_url: str, did: str, *, timeout: float | None = None
    ) -> QuotedPost | None:
        """The strong reference of a Bluesky post, read from its author's PDS."""
        uri = f"at://{did}/app.bsky.feed.post/{post.rkey}"
        query = urlencode({"repo": did, "collection": "app.bsky.feed.post", "rkey": post.rkey})
        endpoint = f"{pds_url.rstrip('/')}/xrpc/com.atproto.repo.getRecord?{query}"
        host = (urlsplit(endpoint).hostname or "").lower()
        budget = self.timeout if timeout is None else min(timeout, self.timeout)
        try:
            response = await self._guarded_get(
                f"site:{host}",
                endpoint,
                accept="application/json",
                max_bytes=256 * 1024,
                truncate=False,
                timeout=budget,
            )
            data = response.json()
        except (_ProviderDown, FetchError) as exc:
            log.info("quoted post unavailable", reason=str(exc)[:200])
            return None
        cid = data.get("cid") if isinstance(data, dict) else None
        if not isinstance(cid, str) or not is_valid_cid(cid) or data.get("uri") != uri:
            log.info("quoted post: PDS answered something else", uri=uri)
            return None
        return QuotedPost(uri=uri, cid=cid)


def _embed_type(meta: PageMeta) -> str:
    """embedType hint from og:type (article, video.*, image) for OpenGraph pages."""
    kind = (meta.kind or "").lower()
    if kind.startswith("video"):
        return "video"
    if kind == "image":
        return "image"
    if kind == "article":
        return "article"
    return "website"
