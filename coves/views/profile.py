"""profileViewDetailed: the one place a user's profile dictionary is built.

``profile`` repeats handle/createdAt in the shape clients of the Go
implementation read (``{did, profile: {handle, createdAt}}``), alongside the
flat fields newer clients use.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from coves.atproto.syntax import INVALID_HANDLE, format_datetime
from coves.views.blobs import BlobUrls


def profile_view(blobs: BlobUrls, user: Mapping[str, Any]) -> dict[str, Any]:
    """``user`` is a ``users`` row (did, handle, display_name, description, avatar, ...)."""
    did = str(user["did"])
    pds = user.get("pds_url")
    handle = user.get("handle") or INVALID_HANDLE
    view: dict[str, Any] = {"did": did, "handle": handle}
    if user.get("display_name"):
        view["displayName"] = user["display_name"]
    if user.get("description"):
        view["description"] = user["description"]
    for column, field in (("avatar", "avatar"), ("banner", "banner")):
        url = blobs.url(user.get(column), did, pds) if user.get(column) else None
        if url:
            view[field] = url
    created = user.get("created_at")
    summary: dict[str, Any] = {"handle": handle}
    if isinstance(created, datetime):
        view["createdAt"] = summary["createdAt"] = format_datetime(created)
    updated = user.get("updated_at")
    if isinstance(updated, datetime):
        view["indexedAt"] = format_datetime(updated)
    view["profile"] = summary
    return view
