"""Reading a page's own description of itself: OpenGraph, then Twitter card
tags, then ``<title>`` and ``<meta name=description>``.

Parsed with selectolax (the Lexbor HTML5 engine, in C): a real HTML5 parser
copes with the broken markup pages serve, and it is an order of magnitude
faster than BeautifulSoup or the standard library's ``html.parser`` on the
half-megabyte heads some pages have. Only the first bytes of a page are
fetched (the tags live in ``<head>``); a page cut mid-tag still parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEAD_END = re.compile(r"</head\s*>|<body[\s>]", re.I)


@dataclass(frozen=True)
class PageMeta:
    title: str | None = None
    description: str | None = None
    image: str | None = None  # absolute http(s) URL
    kind: str | None = None  # og:type
    site_name: str | None = None


def decode_html(content: bytes, content_type: str | None) -> str:
    """Text of a page: the charset its Content-Type or a ``<meta charset>`` names,
    UTF-8 otherwise; undecodable bytes are replaced, never fatal."""
    charset = None
    if content_type:
        message = Message()
        message["content-type"] = content_type
        charset = message.get_param("charset")
    if not isinstance(charset, str):
        match = _META_CHARSET.search(content[:4096])
        charset = match.group(1).decode("ascii") if match else None
    try:
        return content.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return content.decode("utf-8", errors="replace")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def absolute_http_url(value: str | None, base: str) -> str | None:
    """``value`` resolved against the page URL; None unless it is http(s).

    Protocol-relative URLs (``//cdn.example/x.jpg``) take the page's scheme."""
    if not value:
        return None
    url = urljoin(base, value.strip())
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def parse_page(html: str, url: str) -> PageMeta:
    # The tags live in <head>: the body (often most of the page) is never parsed.
    end = _HEAD_END.search(html)
    tree = LexborHTMLParser(html[: end.start()] if end else html)
    props: dict[str, str] = {}
    for node in tree.css("meta"):
        attrs = node.attributes
        key = attrs.get("property") or attrs.get("name")
        content = attrs.get("content")
        if not key or content is None:
            continue
        key = key.strip().lower()
        props.setdefault(key, content)  # the first occurrence wins, as crawlers do
    title_node = tree.css_first("title")
    title = (
        _clean(props.get("og:title"))
        or _clean(props.get("twitter:title"))
        or _clean(title_node.text() if title_node is not None else None)
    )
    description = (
        _clean(props.get("og:description"))
        or _clean(props.get("twitter:description"))
        or _clean(props.get("description"))
    )
    image = None
    for key in ("og:image:secure_url", "og:image", "og:image:url", "twitter:image"):
        image = absolute_http_url(props.get(key), url)
        if image is not None:
            break
    return PageMeta(
        title=title,
        description=description,
        image=image,
        kind=_clean(props.get("og:type")),
        site_name=_clean(props.get("og:site_name")),
    )
