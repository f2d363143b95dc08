"""coves.read.rules on its own: the decisions every read endpoint shares."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coves.read import rules
from coves.read.rules import Account, CommentFacts, CommunityFacts, PostFacts, Relations, Why

A, V, C = "did:plc:author", "did:plc:viewer", "did:plc:community"


def post(**community: object) -> PostFacts:
    return PostFacts("at://x/p/1", Account(A), CommunityFacts(C, **community))  # type: ignore[arg-type]


def test_order_of_the_rules() -> None:
    deleted = PostFacts("u", Account(A, False, "takendown"), CommunityFacts(C, deleted=True),
                        datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    assert rules.may_see_post(deleted, rules.ANONYMOUS) is Why.DELETED
    taken = PostFacts("u", Account(A, False, "takendown"), CommunityFacts(C, deleted=True))
    assert rules.may_see_post(taken, rules.ANONYMOUS) is Why.TAKEN_DOWN
    gone = PostFacts("u", Account(A, False, "deactivated"), CommunityFacts(C))
    assert rules.may_see_post(gone, rules.ANONYMOUS) is Why.AUTHOR_INACTIVE
    assert rules.may_see_post(post(deleted=True), rules.ANONYMOUS) is Why.COMMUNITY_GONE
    assert rules.may_see_post(post(known=False), rules.ANONYMOUS) is Why.COMMUNITY_GONE
    off = post(account=Account(C, False, "deactivated"))
    assert rules.may_see_post(off, rules.ANONYMOUS) is Why.COMMUNITY_GONE
    for state in ("unverified", "rejected"):
        assert rules.may_see_post(post(verification=state), rules.ANONYMOUS) is (
            Why.COMMUNITY_UNVERIFIED
        )
    assert rules.may_see_post(post(), rules.ANONYMOUS) is None


def test_private_communities_are_for_members_and_the_creator() -> None:
    private = post(visibility="private", created_by="did:plc:creator")
    assert rules.may_see_post(private, rules.ANONYMOUS) is Why.PRIVATE
    assert rules.may_see_post(private, Relations(viewer=V)) is Why.PRIVATE
    assert rules.may_see_post(private, Relations(viewer=V, member_of=frozenset({C}))) is None
    assert rules.may_see_post(private, Relations(viewer="did:plc:creator")) is None
    # An empty creator is nobody, not an anonymous match.
    assert not rules.is_member(CommunityFacts(C, visibility="private"), Relations(viewer=""))
    unlisted = post(visibility="unlisted")
    assert rules.may_see_post(unlisted, rules.ANONYMOUS) is None


def test_blocks_in_every_direction() -> None:
    p = post()
    cases = {
        Relations(viewer=V, blocked_communities=frozenset({C})): Why.BLOCKED_COMMUNITY,
        Relations(viewer=V, blocking=frozenset({A})): Why.BLOCKING_AUTHOR,
        Relations(viewer=V, blocked_by=frozenset({A})): Why.BLOCKED_BY_AUTHOR,
    }
    for rel, why in cases.items():
        assert rules.may_see_post(p, rel) is why
    assert Why.BLOCKED_COMMUNITY.blocked_by == "community"
    assert Why.BLOCKING_AUTHOR.blocked_by == Why.BLOCKED_BY_AUTHOR.blocked_by == "author"
    assert Why.TAKEN_DOWN.blocked_by == "moderator"
    assert Why.DELETED.blocked_by is None and Why.PRIVATE.blocked_by is None
    # A blocked community stays readable (to unblock it) but is not listed.
    community = CommunityFacts(C)
    blocker = Relations(viewer=V, blocked_communities=frozenset({C}))
    assert rules.may_read_community(community, blocker) is None
    assert not rules.may_list_community(community, blocker)
    assert rules.may_list_community(community, rules.ANONYMOUS)


@pytest.mark.parametrize(
    ("comment", "rel", "reason"),
    [
        (CommentFacts("c", Account(A), datetime(2026, 1, 1, tzinfo=UTC)), Relations(), "author"),
        (CommentFacts("c", Account(A, False, "deleted")), Relations(), "account"),
        (CommentFacts("c", Account(A, False, "suspended")), Relations(), "moderator"),
        (CommentFacts("c", Account(A)), Relations(viewer=V, blocking=frozenset({A})), "blocked"),
        (CommentFacts("c", Account(A)), Relations(viewer=V, blocked_by=frozenset({A})), "blocked"),
    ],
)
def test_comment_placeholders(comment: CommentFacts, rel: Relations, reason: str) -> None:
    why = rules.may_see_comment(comment, rel)
    assert why is not None and rules.deletion_reason(why) == reason


def test_profiles_follow_the_account_only() -> None:
    assert rules.may_see_profile(Account(A)) is None
    assert rules.may_see_profile(Account(A, False, "deactivated")) is Why.AUTHOR_INACTIVE
    assert rules.may_see_profile(Account(A, False, "takendown")) is Why.TAKEN_DOWN
