"""Aggregator reads: getServices, getAuthorizations and listForCommunity, over the
indexed ``aggregator.service`` and ``aggregator.authorization`` records.

The read rules decide as everywhere (:mod:`coves.read.rules`): an aggregator
whose account is deactivated, deleted, taken down or suspended is not shown
(rule 2), nor are its authorizations in a community's list; an aggregator's
list of communities names only those the viewer could find in a listing
(rules 3 to 5: not gone or unverified, not unlisted, private ones to their
members only, none the viewer blocks); a community's list needs a community
the viewer may read (the route resolves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.atproto.syntax import is_valid_did
from coves.db import Database, Row
from coves.db.queries import aggregators as q
from coves.errors import XRPCError, invalid_request
from coves.params import bool_param, int_param, many_str, one_str
from coves.read import facts, keyset, relations, rules
from coves.read.services import ReadServices
from coves.read.views.aggregator import (
    aggregator_view,
    authorization_in_community,
    authorization_of_aggregator,
)

MAX_DIDS = 100


def _aggregator_shown(row: Row, did_column: str, prefix: str = "") -> bool:
    account = facts.account(row[did_column], row[f"{prefix}active"], row[f"{prefix}account_status"])
    return rules.may_see_aggregator(account) is None


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
    asked = list(dict.fromkeys(dids))
    rows = {row["did"]: row for row in await q.services(db, asked)}
    # In request order, each once; unknown and withheld aggregators are left out.
    return {
        "views": [
            aggregator_view(rows[did], svc.blobs, detailed=detailed)
            for did in asked
            if did in rows and _aggregator_shown(rows[did], "did")
        ]
    }


def _after(svc: ReadServices, kind: str, params: Mapping[str, Any]) -> Any:
    cursor = one_str(params, "cursor")
    return keyset.decode(svc.cursors, kind, cursor) if cursor is not None else None


def _next_cursor(svc: ReadServices, kind: str, rows: list[Row], limit: int) -> str | None:
    # From the query's rows, not the shown ones: rows the rules drop are not read again.
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return keyset.encode(svc.cursors, kind, last["created_at"], last["uri"])


async def get_authorizations(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    aggregator = one_str(params, "aggregatorDid", required=True)
    assert aggregator is not None
    if not is_valid_did(aggregator):
        raise invalid_request("aggregatorDid must be a DID")
    enabled_only = bool_param(params, "enabledOnly")
    limit = int_param(params, "limit", default=50, low=1, high=100)
    kind = f"aggregator.getAuthorizations:{aggregator}:{int(enabled_only)}"
    after = _after(svc, kind, params)
    services = await q.services(db, [aggregator])
    if not services or not _aggregator_shown(services[0], "did"):
        raise XRPCError(404, "AggregatorNotFound", "no such aggregator is indexed")
    view = aggregator_view(services[0], svc.blobs, detailed=False)
    rows = await q.authorizations_page(
        db, aggregator=aggregator, enabled_only=enabled_only, limit=limit + 1, after=after
    )
    page = rows[:limit]
    communities = [facts.community_of_post(row) for row in page]
    state = await relations.load(db, viewer, communities=rules.private_communities(communities))
    body: dict[str, Any] = {
        "authorizations": [
            authorization_of_aggregator(row, view)
            for row, community in zip(page, communities, strict=True)
            if rules.may_show_unasked(community, state.relations)
        ]
    }
    cursor = _next_cursor(svc, kind, rows, limit)
    if cursor is not None:
        body["cursor"] = cursor
    return body


async def list_for_community(
    db: Database, svc: ReadServices, params: Mapping[str, Any], community: Row
) -> dict[str, Any]:
    """Authorizations in ``community`` (already resolved and readable by the caller)."""
    did = community["did"]
    enabled_only = bool_param(params, "enabledOnly")
    limit = int_param(params, "limit", default=50, low=1, high=100)
    kind = f"aggregator.listForCommunity:{did}:{int(enabled_only)}"
    after = _after(svc, kind, params)
    rows = await q.authorizations_page(
        db, community=did, enabled_only=enabled_only, limit=limit + 1, after=after
    )
    body: dict[str, Any] = {
        "aggregators": [
            authorization_in_community(row)
            for row in rows[:limit]
            if _aggregator_shown(row, "aggregator_did", "aggregator_")
        ]
    }
    cursor = _next_cursor(svc, kind, rows, limit)
    if cursor is not None:
        body["cursor"] = cursor
    return body
