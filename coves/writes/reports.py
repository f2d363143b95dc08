"""Reports to the instance's admins (social.coves.admin.submitReport).

Stored, not acted on: admins read them with ``coves reports`` (docs/operations.md).
The target's kind is derived from the URI so admins can sort them without
resolving anything; the target need not be indexed (a report about
something Coves has not seen yet is still worth keeping).
"""

from __future__ import annotations

from typing import Any

from coves.atproto.syntax import AtUri, is_valid_did
from coves.db import Database
from coves.db.queries import reports as q
from coves.errors import XRPCError

TARGET_TYPES = {
    "social.coves.community.post": "post",
    "social.coves.community.comment": "comment",
    "social.coves.community.profile": "community",
    "social.coves.actor.profile": "account",
}


def target_type(uri: AtUri) -> str:
    if uri.collection is None:
        return "account"
    return TARGET_TYPES.get(uri.collection, "other")


async def submit_report(db: Database, reporter: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        target = AtUri.parse(str(body["targetUri"]))
    except ValueError as exc:
        raise XRPCError(400, "InvalidRequest", f"targetUri: {exc}") from None
    if not is_valid_did(target.authority):
        raise XRPCError(400, "InvalidRequest", "targetUri must name its repository by DID")
    explanation = body.get("explanation")
    report_id = await q.insert_report(
        db,
        reporter_did=reporter,
        target_uri=str(target),
        target_type=target_type(target),
        target_did=target.authority,
        reason=str(body["reason"]),
        explanation=explanation.strip() or None if isinstance(explanation, str) else None,
    )
    return {"success": True, "reportId": report_id}
