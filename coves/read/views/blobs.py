"""Blob references in views become URLs from one configurable template.

Records carry blob refs (``{"$type": "blob", "ref": {"$link": cid}, ...}`` or
the legacy ``{"cid": ..., "mimeType": ...}``); clients need URLs. The template
(``BLOB_URL_TEMPLATE``) may point at the owner's PDS (``{pds}``), a CDN or an
image proxy. ``{did}`` and ``{cid}`` are percent-escaped because both come from
records other people wrote; ``{pds}`` is a base URL we stored and is inserted
as is (without a trailing slash). ``{preset}`` names the rendition an image
proxy should serve: ``thumb`` and ``fullsize`` for embedded images, ``avatar``
and ``banner`` for profile pictures, ``video`` for videos (the web client's
image proxy URLs look like ``/img/{preset}/plain/{did}/{cid}``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from coves.atproto.syntax import is_valid_cid


def blob_cid(value: Any) -> str | None:
    """The CID of a blob ref in either form, or None when ``value`` is not one."""
    if not isinstance(value, dict):
        return None
    if value.get("$type") == "blob":
        ref = value.get("ref")
        link = ref.get("$link") if isinstance(ref, dict) else None
        return link if isinstance(link, str) and is_valid_cid(link) else None
    cid = value.get("cid")
    if isinstance(cid, str) and "mimeType" in value and is_valid_cid(cid):
        return cid
    return None


class BlobUrls:
    def __init__(self, template: str) -> None:
        self.template = template
        self._needs_pds = "{pds}" in template

    def url(self, blob: Any, did: str, pds: str | None, preset: str = "fullsize") -> str | None:
        """The URL serving ``blob`` from ``did``'s repo; None when it cannot be built."""
        cid = blob_cid(blob)
        if cid is None:
            return None
        if self._needs_pds and not pds:
            return None
        return (
            self.template.replace("{pds}", (pds or "").rstrip("/"))
            .replace("{preset}", preset)
            .replace("{did}", quote(did, safe=""))
            .replace("{cid}", quote(cid, safe=""))
        )

    def rewrite(self, value: Any, did: str, pds: str | None) -> Any:
        """A copy of ``value`` (an embed) with every blob ref replaced by its URL.

        Blobs whose URL cannot be built are dropped rather than shown as raw
        refs: a client can do nothing with a CID it cannot fetch.
        """
        if isinstance(value, dict):
            if blob_cid(value) is not None:
                return self.url(value, did, pds)
            out: dict[str, Any] = {}
            for key, item in value.items():
                rewritten = self.rewrite(item, did, pds)
                if rewritten is not None or item is None:
                    out[key] = rewritten
            return out
        if isinstance(value, list):
            return [self.rewrite(item, did, pds) for item in value]
        return value
