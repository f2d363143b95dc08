"""Turning the embed a client sent into the embed a post record stores.

- A link to a Bluesky post becomes ``social.coves.embed.post`` (a strong
  reference read from the author's PDS), as the bots expect.
- Any other external embed that lacks a title, description or thumbnail gets
  a link card (``coves.unfurl``): the missing fields are filled (never the
  ones the client gave), the card's image is fetched and uploaded to the
  community's repository as the thumbnail. Everything fetched from the
  outside shares one deadline (``UNFURL_TIMEOUT_SECONDS``); past it, or when
  the site's breaker is open, the post goes out with what it has.
- Images and quoted posts are kept as sent: their blobs and references are
  checked by the lexicon here and by the PDS when the record is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grapheme
import trio

from coves.identity.errors import IdentityError
from coves.identity.resolver import Identity, IdentityResolver
from coves.logs import get_logger
from coves.media.images import ImageLimits
from coves.unfurl.providers import BlueskyPost, bluesky_post
from coves.unfurl.service import LinkCard, Thumbnail, Unfurler

log = get_logger(__name__)

EXTERNAL = "social.coves.embed.external"
QUOTE = "social.coves.embed.post"

Upload = Callable[[bytes, str], Awaitable[dict[str, Any]]]
CACHE_GRACE = 1.0  # seconds beyond the fetch budget for the card cache's reads and writes


@dataclass(frozen=True)
class TextLimit:
    graphemes: int
    bytes: int


def text_limit(lexicon: Mapping[str, Any], definition: str, field: str) -> TextLimit:
    """maxGraphemes and maxLength (UTF-8 bytes) of a string field of a lexicon."""
    defs = lexicon.get("defs")
    schema = defs.get(definition) if isinstance(defs, Mapping) else None
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    spec = props.get(field) if isinstance(props, Mapping) else None
    if not isinstance(spec, Mapping) or spec.get("type") != "string":
        raise LookupError(f"{lexicon.get('id')}#{definition}.{field} is not a string field")
    return TextLimit(int(spec["maxGraphemes"]), int(spec["maxLength"]))


def clip(text: str, limit: TextLimit) -> str:
    """``text`` within ``limit``, cut at a grapheme boundary with an ellipsis."""
    if grapheme.length(text) <= limit.graphemes and len(text.encode()) <= limit.bytes:
        return text
    ellipsis = "\u2026"  # one grapheme, three bytes
    cut: str = text.encode()[: limit.bytes - len(ellipsis.encode())].decode("utf-8", "ignore")
    # The byte cut may have split the last cluster (a ZWJ emoji, a combining
    # accent): drop it, and keep one grapheme of room for the ellipsis.
    keep = grapheme.length(cut) - (1 if len(cut) < len(text) else 0)
    cut = grapheme.slice(cut, 0, max(0, min(keep, limit.graphemes - 1)))
    return cut.rstrip() + ellipsis


@dataclass(frozen=True)
class CardLimits:
    title: TextLimit
    description: TextLimit
    thumb: ImageLimits


@dataclass
class EmbedPreparer:
    """Per process: what preparing embeds needs (set up by the posting service)."""

    unfurler: Unfurler | None
    identity: IdentityResolver | None
    limits: CardLimits
    timeout: float

    async def prepare(
        self, embed: dict[str, Any] | None, *, upload: Upload, thumbnail_url: str | None = None
    ) -> dict[str, Any] | None:
        if embed is None or str(embed.get("$type", "")).removesuffix("#main") != EXTERNAL:
            return embed
        external = dict(embed["external"])
        uri: str = external["uri"]
        quoted = bluesky_post(uri)
        if quoted is not None:
            quote = await self._quote(quoted)
            if quote is not None:
                return quote
        missing = any(not external.get(k) for k in ("title", "description", "thumb"))
        if not missing or self.unfurler is None:
            return _with_domain(embed, external)
        thumb: Thumbnail | None = None
        card: LinkCard | None = None
        # Each fetch gets what is left of the budget as its own deadline, so a slow
        # site fails inside the unfurler (and counts for its breaker); the outer
        # scope, a little longer, only bounds the rest (cache reads and writes).
        deadline = trio.current_time() + self.timeout
        with trio.move_on_at(deadline + CACHE_GRACE):
            if not (external.get("title") and external.get("description")) or (
                not external.get("thumb") and thumbnail_url is None
            ):
                card = await self.unfurler.card(uri, timeout=self.timeout)
            image = thumbnail_url or (card.image if card is not None else None)
            left = deadline - trio.current_time()
            if not external.get("thumb") and image and left > 0:
                thumb = await self.unfurler.thumbnail(image, self.limits.thumb, timeout=left)
        if card is not None:
            if not external.get("title") and card.title:
                external["title"] = clip(card.title, self.limits.title)
            if not external.get("description") and card.description:
                external["description"] = clip(card.description, self.limits.description)
            if not external.get("embedType") and card.embed_type:
                external["embedType"] = card.embed_type
            if not external.get("provider"):
                external["provider"] = card.provider[:128]
        if thumb is not None:
            # Outside the card deadline: the community's PDS has its own.
            external["thumb"] = await upload(thumb.data, thumb.info.mime)
        return _with_domain(embed, external)

    async def _quote(self, post: BlueskyPost) -> dict[str, Any] | None:
        if self.identity is None or self.unfurler is None:
            return None
        deadline = trio.current_time() + self.timeout
        who: Identity | None = None
        with trio.move_on_at(deadline):
            try:
                who = await self.identity.resolve_actor(post.actor)
            except IdentityError as exc:
                log.info("quoted Bluesky post: author not resolved", reason=exc.reason)
                return None
        left = deadline - trio.current_time()
        if who is None or who.pds_url is None or left <= 0:
            return None
        with trio.move_on_at(deadline + CACHE_GRACE):
            ref = await self.unfurler.quoted_post(post, who.pds_url, who.did, timeout=left)
            if ref is not None:
                return {"$type": QUOTE, "post": {"uri": ref.uri, "cid": ref.cid}}
        return None


def _with_domain(embed: dict[str, Any], external: dict[str, Any]) -> dict[str, Any]:
    if not external.get("domain"):
        host = urlsplit(external["uri"]).hostname
        if host:
            external["domain"] = host.lower()[:253]
    return {**embed, "external": external}


def external_link(embed: Any) -> str | None:
    """The URL an external embed links to (for duplicate detection)."""
    if not isinstance(embed, dict) or str(embed.get("$type", "")).removesuffix("#main") != EXTERNAL:
        return None
    external = embed.get("external")
    uri = external.get("uri") if isinstance(external, dict) else None
    return uri if isinstance(uri, str) else None
