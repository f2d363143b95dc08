"""The rules' facts, taken from hydrated rows (one place knows the column names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.read.rules import Account, CommentFacts, CommunityFacts, PostFacts


def account(did: str, active: Any, status: Any) -> Account:
    return Account(did, active is not False, status if isinstance(status, str) else None)


def community_of_post(row: Mapping[str, Any]) -> CommunityFacts:
    """From a post hydration row (``coves.db.queries.posts``)."""
    did = row["community_did"]
    return CommunityFacts(
        did=did,
        known=bool(row["community_known"]),
        visibility=row["community_visibility"] or "public",
        verification=row["community_verification"] or "unverified",
        deleted=row["community_deleted_at"] is not None,
        account=(
            account(did, row["community_active"], row["community_status"])
            if row["community_account_known"]
            else None
        ),
        created_by=row["community_created_by"] or "",
    )


def post(row: Mapping[str, Any]) -> PostFacts:
    return PostFacts(
        uri=row["uri"],
        author=account(row["author_did"], row["author_active"], row["author_status"]),
        community=community_of_post(row),
        deleted_at=row["deleted_at"],
        withheld=row.get("withheld"),
    )


def community(row: Mapping[str, Any]) -> CommunityFacts:
    """From a community row (``coves.db.queries.communities.COLUMNS``)."""
    did = row["did"]
    return CommunityFacts(
        did=did,
        known=True,
        visibility=row["visibility"],
        verification=row["verification"],
        deleted=row["deleted_at"] is not None,
        account=account(did, row["active"], row.get("account_status")),
        created_by=row["created_by"],
    )


def comment(row: Mapping[str, Any]) -> CommentFacts:
    """From a comment row joined with its author (``coves.db.queries.comments``)."""
    return CommentFacts(
        uri=row["uri"],
        author=account(row["commenter_did"], row["author_active"], row.get("author_status")),
        deleted_at=row["deleted_at"],
    )
