"""communityView: the one builder for community objects in get/list/search.

Keeps the Go field names (the wire contract, §3.4) and fixes its quirks:
avatar/banner are URLs rather than bare CIDs, ``descriptionFacets`` is JSON
rather than base64, and ``displayHandle`` (``!name@domain``) is filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coves.atproto.syntax import INVALID_HANDLE, format_datetime
from coves.read.views.blobs import BlobUrls, blob_cid

PROFILE_COLLECTION = "social.coves.community.profile"


@dataclass(frozen=True)
class CommunityViewer:
    subscription_uri: str | None
    block_uri: str | None


def community_pds(row: dict[str, Any], instance_did: str, default_pds: str) -> str | None:
    """The PDS holding the community's blobs: known URL, else ours if we host it."""
    pds = row.get("pds_url")
    if pds:
        return str(pds)
    return default_pds if row.get("hosted_by") == instance_did else None


def display_handle(handle: str | None, name: str) -> str | None:
    """``!name@domain`` from the canonical ``name.community.domain`` handle."""
    if not handle or handle == INVALID_HANDLE:
        return None
    marker = ".community."
    if marker in handle:
        head, _, domain = handle.partition(marker)
        return f"!{head}@{domain}"
    _, _, domain = handle.partition(".")
    return f"!{name.lower()}@{domain}" if domain else None


def community_view(
    row: dict[str, Any],
    blobs: BlobUrls,
    pds: str | None,
    viewer: CommunityViewer | None = None,
) -> dict[str, Any]:
    did = row["did"]
    handle = row.get("handle") or INVALID_HANDLE
    view: dict[str, Any] = {
        "did": did,
        "handle": handle,
        "name": row["name"],
        "displayName": row.get("display_name") or row["name"],
        "createdByDid": row["created_by"],
        "hostedByDid": row["hosted_by"],
        "visibility": row["visibility"],
        "allowExternalDiscovery": row["allow_external_discovery"],
        "subscriberCount": row["subscriber_count"],
        "memberCount": row["subscriber_count"],
        "postCount": row["post_count"],
        "createdAt": format_datetime(row["created_at"]),
        "indexedAt": format_datetime(row["indexed_at"]),
        "updatedAt": format_datetime(row.get("updated_at") or row["indexed_at"]),
        "recordUri": f"at://{did}/{PROFILE_COLLECTION}/self",
        "recordCid": row["record_cid"],
    }
    if row.get("description"):
        view["description"] = row["description"]
    if row.get("description_facets"):
        view["descriptionFacets"] = row["description_facets"]
    for field in ("avatar", "banner"):
        ref = row.get(field)
        url = blobs.url(ref, did, pds, field) if ref else None
        if url:
            view[field] = url
        cid = blob_cid(ref)
        if cid:  # the Go field, kept for existing clients
            view[f"{field}Cid"] = cid
    if row.get("moderation_type"):
        view["moderationType"] = row["moderation_type"]
    if row.get("content_warnings"):
        view["contentWarnings"] = list(row["content_warnings"])
    if row.get("categories"):
        view["categories"] = list(row["categories"])
    if row.get("language"):
        view["language"] = row["language"]
    if row.get("rules"):
        view["rules"] = row["rules"]
    if row.get("last_post_at") is not None:
        view["lastPostAt"] = format_datetime(row["last_post_at"])
    shown = display_handle(row.get("handle"), row["name"])
    if shown:
        view["displayHandle"] = shown
    if viewer is not None:
        state: dict[str, Any] = {
            "subscribed": viewer.subscription_uri is not None,
            "blocked": viewer.block_uri is not None,
        }
        if viewer.subscription_uri:
            state["subscriptionUri"] = viewer.subscription_uri
        if viewer.block_uri:
            state["blockUri"] = viewer.block_uri
        view["viewer"] = state
    return view
