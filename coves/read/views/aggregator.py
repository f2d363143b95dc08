"""aggregatorView(Detailed) and the authorization entries of getAuthorizations and
listForCommunity: the one place each is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.atproto.syntax import format_datetime
from coves.read.views.blobs import BlobUrls

SERVICE = "social.coves.aggregator.service"
DEFS = "social.coves.aggregator.defs"


def aggregator_view(row: Mapping[str, Any], blobs: BlobUrls, *, detailed: bool) -> dict[str, Any]:
    """From an ``aggregators`` row (``coves.db.queries.aggregators.services``)."""
    did = row["did"]
    view: dict[str, Any] = {
        "$type": f"{DEFS}#aggregatorViewDetailed" if detailed else f"{DEFS}#aggregatorView",
        "did": did,
        "displayName": row["display_name"],
        "createdAt": format_datetime(row["created_at"]),
        "recordUri": f"at://{did}/{SERVICE}/self",
    }
    if row["description"]:
        view["description"] = row["description"]
    avatar = blobs.url(row["avatar"], did, row["pds_url"]) if row["avatar"] else None
    if avatar:
        view["avatar"] = avatar
    if row["config_schema"] is not None:
        view["configSchema"] = row["config_schema"]
    if row["source_url"]:
        view["sourceUrl"] = row["source_url"]
    if row["maintainer_did"]:
        view["maintainer"] = row["maintainer_did"]
    if detailed:
        view["stats"] = {
            "communitiesUsing": row["communities_using"],
            "postsCreated": row["posts_created"],
        }
    return view


def authorization_of_aggregator(
    row: Mapping[str, Any], aggregator: dict[str, Any]
) -> dict[str, Any]:
    """A getAuthorizations entry: where ``aggregator`` (its view) is authorized."""
    item: dict[str, Any] = {
        "aggregator": aggregator,
        "communityDid": row["community_did"],
        "enabled": row["enabled"],
        "createdAt": format_datetime(row["created_at"]),
        "recordUri": row["uri"],
    }
    if row["community_handle"]:
        item["communityHandle"] = row["community_handle"]
    if row["community_name"]:
        item["communityName"] = row["community_name"]
    if row["config"] is not None:
        item["config"] = row["config"]
    return item


def authorization_in_community(row: Mapping[str, Any]) -> dict[str, Any]:
    """A listForCommunity entry: an aggregator authorized in the community."""
    item: dict[str, Any] = {
        "aggregatorDid": row["aggregator_did"],
        "communityDid": row["community_did"],
        "enabled": row["enabled"],
        "createdAt": format_datetime(row["created_at"]),
        "createdBy": row["created_by"],
        "recordUri": row["uri"],
    }
    if row["config"] is not None:
        item["config"] = row["config"]
    if row["disabled_at"] is not None:
        item["disabledAt"] = format_datetime(row["disabled_at"])
    if row["disabled_by"]:
        item["disabledBy"] = row["disabled_by"]
    return item
