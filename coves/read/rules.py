"""Who may see what: the one module that decides visibility for every read.

Every read endpoint follows the same pipeline (docs/reading.md): a skeleton
query finds candidate rows, hydration loads the facts below for them and the
viewer's :class:`Relations`, these functions decide, and the views are built
from what they let through. No endpoint filters on its own; skeleton queries
only pre-filter with the SQL forms of the viewer-independent rules
(``coves.db.queries.visibility``) so that pages come out full, and every row
they return is decided here again.

The rules, in the order they are checked:

1. **Deleted content.** A post or comment its author deleted is gone (a
   comment keeps a placeholder while replies hang under it). A post the
   indexer withheld because it breaks its community's content rules
   (``posts.withheld``, docs/posting.md) is gone too, and ``post.get`` says
   why (``CONTENT_RULES``).
2. **Accounts.** Content by an account that is deactivated or deleted is
   withheld (``AUTHOR_INACTIVE``); by one taken down or suspended by its
   host, withheld as a moderator's decision (``TAKEN_DOWN``). Such accounts
   have no profile, their handle is not resolved from the index, and an
   aggregator service of theirs is not shown (nor its authorizations).
3. **Communities.** A community exists for readers only while its profile
   record is live, its account active, and its ``hostedBy`` verified (a
   foreign claim not yet checked, or refused, hides it). Its posts go with it.
4. **Private communities** are readable only by their subscribers and their
   creator; to anyone else they do not exist (not found, never "forbidden",
   so existence does not leak). **Unlisted** communities are readable by
   anyone who names them, but are not listed, searched or put in discover.
5. **Community blocks.** A viewer who blocks a community sees none of its
   posts anywhere; the community itself stays readable (to unblock it).
6. **User blocks, both directions.** A viewer sees nothing written by an
   account they block or that blocks them: posts are dropped from feeds and
   search, ``post.get`` says ``blocked``, comments become placeholders and a
   thread under such a post is not found. Profiles stay readable, with the
   block in the viewer state.
7. **The viewer's own records.** A viewer's blocks (of users and of
   communities) are listed to that viewer whatever the rules above say of
   their subjects: they carry only the subject's DID, which the viewer named,
   and must stay undoable.

Writes ask the same questions (``coves.read.targets``): a comment, vote,
subscription or community block is allowed exactly when its author could
read what it is about. Writing *into* a community (a post, a comment, a vote,
a subscription) asks one more (``may_write_in``): no block may stand between
the writer and the community, whichever side made it; a community's account
blocking someone keeps them out of its threads without hiding them from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

TAKEN_DOWN_STATUSES = frozenset({"takendown", "suspended"})
VISIBILITIES = ("public", "unlisted", "private")

BlockedBy = Literal["author", "community", "moderator"]
DeletionReason = Literal["author", "account", "moderator", "blocked"]


class Why(StrEnum):
    """Why something is withheld from a viewer."""

    NOT_FOUND = "not_found"  # nothing indexed under that name
    DELETED = "deleted"  # its author deleted it
    CONTENT_RULES = "content_rules"  # it breaks its community's content rules (withheld)
    AUTHOR_INACTIVE = "author_inactive"  # the author's account is deactivated or deleted
    TAKEN_DOWN = "taken_down"  # the author's account is taken down or suspended
    COMMUNITY_GONE = "community_gone"  # community deleted, deactivated or not indexed
    COMMUNITY_UNVERIFIED = "community_unverified"  # hostedBy unverified or refused
    PRIVATE = "private"  # a private community the viewer is not a member of
    BLOCKED_COMMUNITY = "blocked_community"  # the viewer blocks the community
    BLOCKING_AUTHOR = "blocking_author"  # the viewer blocks the author
    BLOCKED_BY_AUTHOR = "blocked_by_author"  # the author blocks the viewer
    BLOCKED_BY_COMMUNITY = "blocked_by_community"  # the community's account blocks the viewer

    @property
    def blocked_by(self) -> BlockedBy | None:
        """For ``post.get``'s ``blocked`` entries: what the block is about."""
        return _BLOCKED_BY.get(self)

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_BLOCKED_BY: dict[Why, BlockedBy] = {
    Why.BLOCKED_COMMUNITY: "community",
    Why.BLOCKING_AUTHOR: "author",
    Why.BLOCKED_BY_AUTHOR: "author",
    Why.BLOCKED_BY_COMMUNITY: "community",
    Why.TAKEN_DOWN: "moderator",
}
_MESSAGES: dict[Why, str] = {
    Why.NOT_FOUND: "not found",
    Why.DELETED: "deleted by its author",
    Why.CONTENT_RULES: "withheld: it breaks the community's content rules",
    Why.AUTHOR_INACTIVE: "the author's account is not active",
    Why.TAKEN_DOWN: "removed by a moderator",
    Why.COMMUNITY_GONE: "the community is not available",
    Why.COMMUNITY_UNVERIFIED: "the community's host is not verified",
    Why.PRIVATE: "not found",  # a private community does not exist for outsiders
    Why.BLOCKED_COMMUNITY: "you block this community",
    Why.BLOCKING_AUTHOR: "you block the author",
    Why.BLOCKED_BY_AUTHOR: "the author blocks you",
    Why.BLOCKED_BY_COMMUNITY: "this community blocks you",
}


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the rules see it (``users.active``/``account_status``)."""

    did: str
    active: bool = True
    status: str | None = None


@dataclass(frozen=True, slots=True)
class CommunityFacts:
    did: str
    known: bool = True  # a community profile is indexed under this DID
    visibility: str = "public"
    verification: str = "verified"
    deleted: bool = False
    account: Account | None = None  # None: no users row yet (treated as active)
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class PostFacts:
    uri: str
    author: Account
    community: CommunityFacts
    deleted_at: datetime | None = None
    withheld: str | None = None  # posts.withheld: kept out of views by the indexer


@dataclass(frozen=True, slots=True)
class CommentFacts:
    uri: str
    author: Account
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Relations:
    """The viewer's relations the rules look at, loaded for the DIDs of one page
    (``coves.read.relations``). Anonymous viewers have none."""

    viewer: str | None = None
    member_of: frozenset[str] = frozenset()  # communities subscribed to (among those asked)
    blocked_communities: frozenset[str] = frozenset()
    blocking: frozenset[str] = frozenset()  # accounts the viewer blocks (among those asked)
    blocked_by: frozenset[str] = frozenset()  # accounts that block the viewer (among those asked)


ANONYMOUS = Relations()


def account_withheld(account: Account) -> Why | None:
    """Rule 2: whether an account's content and profile are withheld from everyone."""
    if account.status in TAKEN_DOWN_STATUSES:
        return Why.TAKEN_DOWN
    if not account.active:
        return Why.AUTHOR_INACTIVE
    return None


def community_exists(community: CommunityFacts) -> Why | None:
    """Rule 3: whether the community is there for anyone at all."""
    if not community.known or community.deleted:
        return Why.COMMUNITY_GONE
    if community.account is not None and account_withheld(community.account) is not None:
        return Why.COMMUNITY_GONE
    if community.verification != "verified":
        return Why.COMMUNITY_UNVERIFIED
    return None


def may_read_community(community: CommunityFacts, rel: Relations) -> Why | None:
    """Rules 3 and 4: whether ``rel``'s viewer may read the community and its content.

    A block (rule 5) does not stop reading the community itself.
    """
    why = community_exists(community)
    if why is not None:
        return why
    if community.visibility == "private" and not is_member(community, rel):
        return Why.PRIVATE
    return None


def is_member(community: CommunityFacts, rel: Relations) -> bool:
    viewer = rel.viewer
    if viewer is None:
        return False
    return community.did in rel.member_of or (bool(viewer) and viewer == community.created_by)


def may_list_community(community: CommunityFacts, rel: Relations) -> bool:
    """Whether a listing or search may show the community to this viewer: readable,
    not blocked, and public, or private with the viewer a member. Unlisted ones
    appear only when a listing asks for them by visibility (checked by the caller's
    query, see ``coves.db.queries.visibility.listing``)."""
    if may_read_community(community, rel) is not None:
        return False
    return community.did not in rel.blocked_communities


def may_show_unasked(community: CommunityFacts, rel: Relations) -> bool:
    """Whether a list the viewer did not ask by community (an aggregator's
    authorizations) may name it: as a listing would, but never an unlisted one
    (those are found only by name) and private ones only to their members."""
    return may_list_community(community, rel) and community.visibility != "unlisted"


def _blocks(author: str, rel: Relations) -> Why | None:
    if author in rel.blocking:
        return Why.BLOCKING_AUTHOR
    if author in rel.blocked_by:
        return Why.BLOCKED_BY_AUTHOR
    return None


def may_see_post(post: PostFacts, rel: Relations) -> Why | None:
    """Every rule, for one post and one viewer: None when it is shown."""
    if post.withheld is not None:
        return Why.CONTENT_RULES
    if post.deleted_at is not None:
        return Why.DELETED
    why = account_withheld(post.author)
    if why is not None:
        return why
    why = may_read_community(post.community, rel)
    if why is not None:
        return why
    if post.community.did in rel.blocked_communities:
        return Why.BLOCKED_COMMUNITY
    return _blocks(post.author.did, rel)


def may_write_in(community: str, rel: Relations) -> Why | None:
    """Rules 5 and 6 for a write into ``community`` (a post, a comment, a vote, a
    subscription) by ``rel``'s viewer, beyond reading what it is about: the writer
    blocks neither the community nor its account, and its account does not block
    the writer (``rel`` must hold the community's account among its actors)."""
    if community in rel.blocked_communities or community in rel.blocking:
        return Why.BLOCKED_COMMUNITY
    if community in rel.blocked_by:
        return Why.BLOCKED_BY_COMMUNITY
    return None


def comment_withheld(comment: CommentFacts) -> Why | None:
    """The viewer-independent rules for a comment's content (rules 1 and 2); such a
    comment is shown as a placeholder while replies hang under it."""
    if comment.deleted_at is not None:
        return Why.DELETED
    return account_withheld(comment.author)


def may_see_comment(comment: CommentFacts, rel: Relations) -> Why | None:
    """Every rule for a comment's content, given that its thread is readable."""
    return comment_withheld(comment) or _blocks(comment.author.did, rel)


def deletion_reason(why: Why) -> DeletionReason:
    """commentView.deletionReason of a placeholder."""
    if why is Why.DELETED:
        return "author"
    if why is Why.TAKEN_DOWN:
        return "moderator"
    if why in (Why.BLOCKING_AUTHOR, Why.BLOCKED_BY_AUTHOR):
        return "blocked"
    return "account"


def may_see_profile(account: Account) -> Why | None:
    """Profiles (and an actor's feeds) exist while the account is active (rule 2)."""
    return account_withheld(account)


def may_see_aggregator(account: Account) -> Why | None:
    """An aggregator's service record (and its authorizations) is shown while its
    account is active (rule 2): a taken-down bot does not advertise itself."""
    return account_withheld(account)


def may_resolve_handle(account: Account, community: CommunityFacts | None) -> bool:
    """Whether ``com.atproto.identity.resolveHandle`` answers from the index: the
    account has a profile (rule 2) and, for a community's account, the community
    is readable to anyone (rules 3 and 4: the method answers everyone alike)."""
    if account_withheld(account) is not None:
        return False
    return community is None or may_read_community(community, ANONYMOUS) is None


def private_communities(communities: Iterable[CommunityFacts]) -> list[str]:
    """The communities whose membership the rules need to know for this page."""
    return sorted({c.did for c in communities if c.visibility == "private"})
