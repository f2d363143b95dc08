"""How a linked URL is described: which provider, and where to ask.

oEmbed is used for the providers the original AppView supported (YouTube,
Streamable, Reddit): their pages are heavy or script-rendered while their
oEmbed endpoints answer small JSON. Everything else is read for OpenGraph
tags, and each site is its own provider for the circuit breaker, so one slow
site never stops cards for the others. A ``bsky.app`` post permalink is not
a card at all: it becomes a quoted post (``social.coves.embed.post``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from coves.atproto.syntax import is_valid_did, is_valid_handle, is_valid_rkey


@dataclass(frozen=True)
class OEmbedProvider:
    name: str  # also the card's ``provider`` and the breaker key
    hosts: frozenset[str]  # exact hosts, lowercased, "www." included where used
    endpoint: str  # oEmbed endpoint; ``url`` and ``format=json`` are added


DEFAULT_OEMBED: tuple[OEmbedProvider, ...] = (
    OEmbedProvider(
        "youtube",
        frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"}),
        "https://www.youtube.com/oembed",
    ),
    OEmbedProvider(
        "streamable",
        frozenset({"streamable.com", "www.streamable.com"}),
        "https://api.streamable.com/oembed.json",
    ),
    OEmbedProvider(
        "reddit",
        frozenset({"reddit.com", "www.reddit.com", "old.reddit.com", "new.reddit.com"}),
        "https://www.reddit.com/oembed",
    ),
)

BLUESKY_HOSTS = frozenset({"bsky.app", "www.bsky.app"})
_BSKY_PATH = re.compile(r"^/profile/([^/]+)/post/([^/]+)/?$")


@dataclass(frozen=True)
class BlueskyPost:
    actor: str  # handle or DID, as in the permalink
    rkey: str


@dataclass(frozen=True)
class Route:
    """How to describe one URL."""

    kind: str  # "oembed" or "opengraph"
    provider: str  # card provider name
    breaker_key: str  # one breaker per provider (per site for OpenGraph)
    oembed: OEmbedProvider | None = None


def normalize_url(url: str) -> str | None:
    """The URL as cached and fetched: http(s) only, host lowercased, fragment dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def bluesky_post(url: str) -> BlueskyPost | None:
    """The Bluesky post a ``bsky.app/profile/<actor>/post/<rkey>`` permalink names."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in BLUESKY_HOSTS:
        return None
    match = _BSKY_PATH.match(parts.path)
    if match is None:
        return None
    actor, rkey = match.group(1), match.group(2)
    if not (is_valid_did(actor) or is_valid_handle(actor)) or not is_valid_rkey(rkey):
        return None
    return BlueskyPost(actor=actor if actor.startswith("did:") else actor.lower(), rkey=rkey)


def route(url: str, oembed: Sequence[OEmbedProvider] = DEFAULT_OEMBED) -> Route:
    """The provider for ``url`` (already normalised)."""
    host = (urlsplit(url).hostname or "").lower()
    for provider in oembed:
        if host in provider.hosts:
            return Route("oembed", provider.name, f"oembed:{provider.name}", provider)
    return Route("opengraph", "opengraph", f"site:{host}")
