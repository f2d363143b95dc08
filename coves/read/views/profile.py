"""profileViewDetailed: the one place a user's profile dictionary is built.

``profile`` repeats handle/createdAt in the shape clients of the Go
implementation read (``{did, profile: {handle, createdAt}}``), alongside the
flat fields newer clients use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coves.atproto.syntax import INVALID_HANDLE, format_datetime
from coves.read.views.blobs import BlobUrls


@dataclass(frozen=True)
class ProfileViewer:
    """The viewer's user blocks with the profile's account."""

    block_uri: str | None  # the viewer's block of this account
    blocked_by: bool  # this account blocks the viewer


def profile_view(
    blobs: BlobUrls,
    user: Mapping[str, Any],
    stats: Mapping[str, Any] | None = None,
    viewer: ProfileViewer | None = None,
) -> dict[str, Any]:
    """``user`` is a ``users`` row (did, handle, display_name, ...); ``stats`` optional counts.

    ``createdAt`` is the account's own claim (its profile record's ``createdAt``);
    an account without one shows when Coves first indexed it.
    """
    did = str(user["did"])
    pds = user.get("pds_url")
    handle = user.get("handle") or INVALID_HANDLE
    view: dict[str, Any] = {"did": did, "handle": handle}
    if user.get("display_name"):
        view["displayName"] = user["display_name"]
    if user.get("description"):
        view["description"] = user["description"]
    for column, field in (("avatar", "avatar"), ("banner", "banner")):
        url = blobs.url(user.get(column), did, pds, field) if user.get(column) else None
        if url:
            view[field] = url
    created = user.get("profile_created_at") or user.get("created_at")
    summary: dict[str, Any] = {"handle": handle}
    if isinstance(created, datetime):
        view["createdAt"] = summary["createdAt"] = format_datetime(created)
    updated = user.get("updated_at")
    if isinstance(updated, datetime):
        view["indexedAt"] = format_datetime(updated)
    view["profile"] = summary
    if stats is not None:
        view["stats"] = {
            "postCount": int(stats.get("post_count") or 0),
            "commentCount": int(stats.get("comment_count") or 0),
            "communityCount": int(stats.get("community_count") or 0),
            "membershipCount": int(stats.get("membership_count") or 0),
            "reputation": int(stats.get("reputation") or 0),
        }
    if viewer is not None:
        state: dict[str, Any] = {
            "blocked": viewer.block_uri is not None,
            "blockedBy": viewer.blocked_by,
        }
        if viewer.block_uri is not None:
            state["blocking"] = state["blockUri"] = viewer.block_uri
        view["viewer"] = state
    return view
