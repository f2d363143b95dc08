"""The ``social.coves.community.profile`` record a hosted community's repo holds.

Built from validated request input; checked against the record lexicon before
it is written, so a community can never hold a profile the indexer refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.errors import XRPCError, invalid_request
from coves.ingest.parse import RecordValidator

PROFILE = "social.coves.community.profile"
SELF = "self"

# Input fields copied into the record as they are (already validated by the method lexicon).
_PLAIN = (
    "displayName",
    "description",
    "visibility",
    "rules",
    "categories",
    "language",
    "contentRules",
)
_UPDATABLE = (*_PLAIN, "moderationType", "contentWarnings")


def new_profile(
    body: Mapping[str, Any],
    *,
    name: str,
    handle: str,
    created_by: str,
    hosted_by: str,
    created_at: str,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": PROFILE,
        "name": name,
        "handle": handle,
        "createdBy": created_by,
        "hostedBy": hosted_by,
        "visibility": "public",
        "federation": {"allowExternalDiscovery": bool(body.get("allowExternalDiscovery", True))},
        "createdAt": created_at,
    }
    for key in _PLAIN:
        if body.get(key) is not None:
            record[key] = body[key]
    return record


def updated_profile(current: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with the fields ``body`` sets; identity fields never change."""
    record = dict(current)
    record["$type"] = PROFILE
    for key in _UPDATABLE:
        if key in body and body[key] is not None:
            record[key] = body[key]
    if body.get("allowExternalDiscovery") is not None:
        record["federation"] = {
            **(record.get("federation") or {}),
            "allowExternalDiscovery": bool(body["allowExternalDiscovery"]),
        }
    return record


def check_profile(validator: RecordValidator | None, record: Mapping[str, Any]) -> None:
    """Refuse (400) a record the profile lexicon would refuse, before writing it."""
    if validator is None:
        return
    try:
        validator.validate_record(PROFILE, record)
    except XRPCError:
        raise
    except Exception as exc:
        raise invalid_request(f"the community profile would be invalid: {exc}") from None
