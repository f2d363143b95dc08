"""Reading an oEmbed answer (https://oembed.com, JSON format) into card fields."""

from __future__ import annotations

from typing import Any

from coves.unfurl.opengraph import PageMeta, absolute_http_url

# oEmbed ``type`` -> the card's ``embedType`` hint.
EMBED_TYPES = {"video": "video", "photo": "image", "rich": "article", "link": "article"}


def parse_oembed(data: Any, url: str) -> PageMeta:
    """Card fields from an oEmbed JSON object; raise ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("oEmbed answer is not a JSON object")

    def text(key: str) -> str | None:
        value = data.get(key)
        if not isinstance(value, str):
            return None
        cleaned = " ".join(value.split())
        return cleaned or None

    author = text("author_name")
    description = text("description") or (f"By {author}" if author else None)
    kind = text("type")
    return PageMeta(
        title=text("title"),
        description=description,
        image=absolute_http_url(text("thumbnail_url"), url),
        kind=EMBED_TYPES.get(kind or ""),
        site_name=text("provider_name"),
    )
