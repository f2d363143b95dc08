"""getServices, getAuthorizations and listForCommunity: views of the indexed
``aggregator.service`` and ``aggregator.authorization`` records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from coves.atproto.syntax import format_datetime, is_valid_did
from coves.cursors import invalid_cursor
from coves.db import Database, Row
from coves.db.queries import aggregators as q
from coves.errors import XRPCError, invalid_request
from coves.params import bool_param, int_param, many_str, one_str
from coves.read.services import ReadServices

SERVICE = "social.coves.aggregator.service"
DEFS = "social.coves.aggregator.defs"
MAX_DIDS = 100


def service_view(row: Row, svc: ReadServices, *, detailed: bool) -> dict[str, Any]:
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
    avatar = svc.blobs.url(row["avatar"], did, row["pds_url"]) if row["avatar"] else None
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


async def get_services(
    db: Database, svc: ReadServices, params: Mapping[str, Any]
) -> dict[str, Any]:
    # Repeated parameters or one comma-separated list, as the original accepted.
    dids: list[str] = []
    for value in many_str(params, "dids"):
        dids.extend(part.strip() for part in value.split(",") if part.strip())
    if not dids:
        raise invalid_request("dids: at least one DID is required")
    if len(dids) > MAX_DIDS:
        raise invalid_request(f"dids: at most {MAX_DIDS}")
    for did in dids:
        if not is_valid_did(did):
            raise invalid_request(f"dids: {did[:100]!r} is not a DID")
    detailed = bool_param(params, "detailed")
    rows = {row["did"]: row for row in await q.services(db, list(dict.fromkeys(dids)))}
    # In request order, each once; unknown DIDs are left out.
    return {
        "views": [
            service_view(rows[did], svc, detailed=detailed)
            for did in dict.fromkeys(dids)
            if did in rows
        ]
    }


def _page_cursor(
    svc: ReadServices, kind: str, params: Mapping[str, Any]
) -> tuple[datetime, str] | None:
    cursor = one_str(params, "cursor")
    if cursor is None:
        return None
    payload = svc.cursors.decode(kind, cursor)
    at, uri = payload.get("t"), payload.get("u")
    try:
        parsed = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or not isinstance(uri, str):
        raise invalid_cursor()
    return parsed, uri


def _next_cursor(svc: ReadServices, kind: str, rows: list[Row], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    # Full precision: a keyset on a rounded time would skip or repeat rows.
    return svc.cursors.encode(kind, {"t": last["created_at"].isoformat(), "u": last["uri"]})


async def get_authorizations(
    db: Database, svc: ReadServices, params: Mapping[str, Any]
) -> dict[str, Any]:
    aggregator = one_str(params, "aggregatorDid", required=True)
    assert aggregator is not None
    if not is_valid_did(aggregator):
        raise invalid_request("aggregatorDid must be a DID")
    enabled_only = bool_param(params, "enabledOnly")
    limit = int_param(params, "limit", default=50, low=1, high=100)
    kind = f"aggregator.getAuthorizations:{aggregator}:{int(enabled_only)}"
    after = _page_cursor(svc, kind, params)
    services = await q.services(db, [aggregator])
    if not services:
        raise XRPCError(404, "AggregatorNotFound", "no such aggregator is indexed")
    view = service_view(services[0], svc, detailed=False)
    rows = await q.authorizations_page(
        db, aggregator=aggregator, enabled_only=enabled_only, limit=limit + 1, after=after
    )
    out: list[dict[str, Any]] = []
    for row in rows[:limit]:
        item: dict[str, Any] = {
            "aggregator": view,
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
        out.append(item)
    body: dict[str, Any] = {"authorizations": out}
    cursor = _next_cursor(svc, kind, rows, limit)
    if cursor is not None:
        body["cursor"] = cursor
    return body


async def list_for_community(
    db: Database, svc: ReadServices, params: Mapping[str, Any], community: Row
) -> dict[str, Any]:
    """Authorizations in ``community`` (already resolved and visible to the caller)."""
    did = community["did"]
    enabled_only = bool_param(params, "enabledOnly")
    limit = int_param(params, "limit", default=50, low=1, high=100)
    kind = f"aggregator.listForCommunity:{did}:{int(enabled_only)}"
    after = _page_cursor(svc, kind, params)
    rows = await q.authorizations_page(
        db, community=did, enabled_only=enabled_only, limit=limit + 1, after=after
    )
    out: list[dict[str, Any]] = []
    for row in rows[:limit]:
        item: dict[str, Any] = {
            "aggregatorDid": row["aggregator_did"],
            "communityDid": did,
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
        out.append(item)
    body: dict[str, Any] = {"aggregators": out}
    cursor = _next_cursor(svc, kind, rows, limit)
    if cursor is not None:
        body["cursor"] = cursor
    return body
