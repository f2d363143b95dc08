"""The SQL forms of the read rules (``coves.read.rules``), for skeleton queries.

Skeleton queries pre-filter with these so that a page of candidates is not
mostly rows the rules would drop; the rules then decide every row again (a
row may have changed since, and viewer-dependent rules are only decided
there). Each fragment names the rule it mirrors; the rule-by-endpoint test
matrix (tests/read/test_rules_matrix.py) checks that the two agree.
"""

from __future__ import annotations

# Rule 2, for posts aliased ``p``: the author's account is active (deactivated,
# deleted, taken down and suspended accounts all have active = false). An
# anti-join on the tiny partial index users_inactive.
LIVE_AUTHOR = "NOT EXISTS (SELECT 1 FROM users au WHERE au.did = p.author_did AND NOT au.active)"

# Rule 2, for aggregator authorizations joined with the aggregator's account
# ``ag``: the account is active (or not known yet).
LIVE_AGGREGATOR = "ag.active IS NOT FALSE"

# The joins the community rules need, for posts aliased ``p``.
POST_COMMUNITY = """
JOIN communities c ON c.did = p.community_did
LEFT JOIN users cu ON cu.did = p.community_did
"""

# Rule 3, for communities aliased ``c`` with their account ``cu``: the profile is
# live, hostedBy is verified and the account is active (or not known yet). Also
# the predicate of the partial listing indexes.
COMMUNITY_EXISTS = "c.deleted_at IS NULL AND c.verification = 'verified' AND cu.active IS NOT FALSE"

# Rule 4 for lists the viewer did not ask by community (an aggregator's
# authorizations): never unlisted ones; private ones are decided per viewer.
NOT_UNLISTED = "c.visibility <> 'unlisted'"

# Rule 4 for discover and search: only public communities are put in front of
# people who did not name them (unlisted ones are not listed; private ones are
# for members, who see them in their timeline).
LISTED = "c.visibility = 'public'"

# Rule 4 for community listings: which communities a listing may show. The
# caller picks by what was asked for; ``%(viewer)s`` is the viewer's DID.
MEMBER = (
    "(c.created_by = %(viewer)s OR EXISTS (SELECT 1 FROM subscriptions s"
    " WHERE s.user_did = %(viewer)s AND s.community_did = c.did AND s.deleted_at IS NULL))"
)
SUBSCRIBED = (
    "EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_did = %(viewer)s"
    " AND s.community_did = c.did AND s.deleted_at IS NULL)"
)
# Rule 5 for listings and timelines: not a community the viewer blocks.
NOT_BLOCKED = (
    "NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_did = %(viewer)s"
    " AND b.community_did = c.did AND b.deleted_at IS NULL)"
)


def listing(visibility: str | None, viewer: str | None, subscribed_only: bool) -> str:
    """Which communities a listing or search shows: public ones by default, unlisted
    ones when asked for, private ones only to members; never blocked ones."""
    clauses = []
    if subscribed_only:
        clauses.append(SUBSCRIBED)
        if visibility is not None:
            clauses.append("c.visibility = %(visibility)s")
    elif visibility == "private":
        clauses.append("c.visibility = 'private'")
        clauses.append(MEMBER if viewer else "false")
    else:
        clauses.append("c.visibility = %(visibility)s")
    if viewer is not None:
        clauses.append(NOT_BLOCKED)
    return " AND ".join(clauses)
