"""The author block embedded in posts (a basic profile view)."""

from __future__ import annotations

from typing import Any

from coves.atproto.syntax import INVALID_HANDLE
from coves.read.views.blobs import BlobUrls


def author_view(
    blobs: BlobUrls,
    did: str,
    *,
    handle: str | None,
    display_name: str | None,
    avatar: Any,
    pds: str | None,
) -> dict[str, Any]:
    view: dict[str, Any] = {"did": did, "handle": handle or INVALID_HANDLE}
    if display_name:
        view["displayName"] = display_name
    url = blobs.url(avatar, did, pds, "avatar") if avatar else None
    if url:
        view["avatar"] = url
    return view
