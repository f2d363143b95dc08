"""The read rules on every read endpoint: viewer kind x rule x endpoint.

One world holds a post (with a comment under it) for each rule; each test
asks one endpoint, as each kind of viewer, whether it shows each rule's
subject, and compares every cell with the table below. Every cell that
disagrees is reported, so a failure names the rule, the endpoint and the
viewer. The getComments leak of private communities is the cell
(private, getComments, anonymous). Responses are checked against the
lexicons by the client, so the matrix also covers the output contract.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio

from coves.context import AppContext
from coves.db import Database
from coves.errors import XRPCError
from coves.read import targets
from coves.read.communities import resolve
from coves.read.rules import Why
from coves.read.services import ReadServices
from coves.writes.records import refuse
from tests.read.conftest import Client
from tests.support.factories import Factory

VIEWERS = ("anonymous", "member", "outsider", "blocks_author", "blocked_by_author",
           "blocks_community")  # fmt: skip
SIGNED_IN = frozenset(VIEWERS) - {"anonymous"}
ALL = frozenset(VIEWERS)
NONE: frozenset[str] = frozenset()

# Rules whose subject is a post (and the comment under it).
POST_RULES = (
    "public",  # the baseline: nothing withheld
    "unlisted",  # readable when named, never listed
    "private",  # members only
    "community_blocked",  # the blocks_community viewer blocks its community
    "user_blocked",  # its author is blocked by blocks_author and blocks blocked_by_author
    "author_deactivated",
    "author_taken_down",
    "community_deleted",
    "community_unverified",  # a foreign hostedBy claim not checked yet
    "community_rejected",  # a foreign hostedBy claim refused
    "post_deleted",
    "post_withheld",  # breaks its community's content rules (withheld by the indexer)
)
WITHHELD_FOR_ALL = {
    "post_withheld",
    "author_deactivated",
    "author_taken_down",
    "community_deleted",
    "community_unverified",
    "community_rejected",
    "post_deleted",
}


def post_visibility(rule: str, *, listed: bool = False) -> frozenset[str]:
    """Who sees a rule's post where posts are shown (``listed``: discover and search,
    which only show public communities)."""
    if rule in WITHHELD_FOR_ALL:
        return NONE
    if rule == "unlisted":
        return NONE if listed else ALL
    if rule == "private":
        return NONE if listed else frozenset({"member"})
    if rule == "community_blocked":
        return ALL - {"blocks_community"}
    if rule == "user_blocked":
        return ALL - {"blocks_author", "blocked_by_author"}
    return ALL


def community_visibility(rule: str, *, listing: bool) -> frozenset[str]:
    """Who sees the rule's community (get: readable; listings: listed when asked for by
    its visibility)."""
    if rule in {"community_deleted", "community_unverified", "community_rejected"}:
        return NONE
    if rule == "private":
        return frozenset({"member"})
    if rule == "community_blocked" and listing:
        return ALL - {"blocks_community"}
    return ALL


def profile_visibility(rule: str) -> frozenset[str]:
    return NONE if rule in {"author_deactivated", "author_taken_down"} else ALL


def unasked_visibility(rule: str) -> frozenset[str]:
    """Who sees the rule's community named in a list they did not ask by community
    (an aggregator's authorizations): as a listing, but never an unlisted one."""
    return NONE if rule == "unlisted" else community_visibility(rule, listing=True)


GONE_COMMUNITIES = {"community_deleted", "community_unverified", "community_rejected"}
# The viewer's own blocks (rule 7) name these rules' subjects: listed whatever the rules
# say of the subject (withheld accounts, private, gone or unverified communities).
BLOCKED_AUTHORS = {"user_blocked", "author_deactivated", "author_taken_down"}
BLOCKED_COMMUNITIES = {"community_blocked", "private", *GONE_COMMUNITIES}


def handle_visibility(rule: str) -> frozenset[str]:
    """resolveHandle answers everyone alike: a community's handle while anyone may read it."""
    return NONE if rule in {"private", *GONE_COMMUNITIES} else ALL


@dataclass
class Subject:
    rule: str
    community: str
    community_name: str
    visibility: str
    author: str
    post: str
    word: str  # in the post's text only: what searchPosts looks for
    comment: str = ""  # by the world's commenter, under the post
    author_handle: str = ""
    community_handle: str = ""


@dataclass
class World:
    viewers: dict[str, str | None]
    commenter: str
    subjects: dict[str, Subject] = field(default_factory=dict)


async def build_world(factory: Factory) -> World:
    did = {k: await factory.user(f"{k.replace('_', '-')}.test") for k in sorted(SIGNED_IN)}
    viewers: dict[str, str | None] = {"anonymous": None, **did}
    handles = {
        "author": "author.test",
        "blockable": "blockable.test",
        "deactivated": "deactivated.test",
        "takendown": "takendown.test",
    }
    author = await factory.user(handles["author"])
    blocked_author = await factory.user(handles["blockable"])
    deactivated = await factory.user(handles["deactivated"])
    taken_down = await factory.user(handles["takendown"])
    handle_of = {
        author: handles["author"],
        blocked_author: handles["blockable"],
        deactivated: handles["deactivated"],
        taken_down: handles["takendown"],
    }
    # Every author is also an aggregator, authorized in its subject's community: the
    # account rules then apply to aggregator services and authorizations too.
    for did_ in handle_of:
        await factory.aggregator(did_)
    commenter = await factory.user("commenter.test")
    communities = {
        "public": ("pubc", {}),
        "unlisted": ("unlc", {"visibility": "unlisted"}),
        "private": ("prvc", {"visibility": "private"}),
        "community_blocked": ("blkc", {}),
        "community_deleted": ("delc", {"deleted": True}),
        "community_unverified": (
            "unvc",
            {"hosted_by": "did:web:far.example", "verification": "unverified"},
        ),
        "community_rejected": (
            "rejc",
            {"hosted_by": "did:web:liar.example", "verification": "rejected"},
        ),
    }
    made: dict[str, tuple[str, str, str]] = {}
    for rule, (name, kwargs) in communities.items():
        community = await factory.community(name, **kwargs)  # type: ignore[arg-type]
        made[rule] = (community, name, kwargs.get("visibility", "public"))
    world = World(viewers, commenter)
    authors = {
        "user_blocked": blocked_author,
        "author_deactivated": deactivated,
        "author_taken_down": taken_down,
    }
    for rule in POST_RULES:
        community, name, visibility = made.get(rule, made["public"])
        by = authors.get(rule, author)
        word = f"zq{rule.replace('_', '')}"
        post = await factory.post(
            community,
            by,
            title="matrix",
            content=f"{word} text",
            deleted=rule in ("post_deleted", "post_withheld"),
        )
        if rule == "post_withheld":
            await factory.db.execute(
                "UPDATE posts SET withheld = 'content_rules' WHERE uri = %s", (post,)
            )
        subject = Subject(rule, community, name, visibility, by, post, word)
        subject.comment = await factory.comment(post, commenter, content=f"on {word}")
        subject.author_handle = handle_of[by]
        subject.community_handle = await factory.db.fetchval(
            "SELECT handle FROM users WHERE did = %s", (community,)
        )
        world.subjects[rule] = subject
    for pair in {(s.community, s.author) for s in world.subjects.values()}:
        await factory.authorization(*pair)
    # Relations: membership, blocks, and subscriptions for the timeline (everyone
    # signed in subscribes to every community they may; only the member to the private one).
    await factory.subscribe(did["member"], made["private"][0])
    await factory.block(did["blocks_community"], made["community_blocked"][0])
    await factory.user_block(did["blocks_author"], blocked_author)
    # Blocks of subjects withheld from these viewers anyway (rule 7 lists them all).
    for rule in ("private", *sorted(GONE_COMMUNITIES)):
        await factory.block(did["blocks_community"], made[rule][0])
    for withheld in (deactivated, taken_down):
        await factory.user_block(did["blocks_author"], withheld)
    await factory.user_block(blocked_author, did["blocked_by_author"])
    for viewer in SIGNED_IN:
        for community, _, visibility in made.values():
            if visibility != "private":
                await factory.subscribe(did[viewer], community)
    await factory.set_active(deactivated, False, "deactivated")
    await factory.set_active(taken_down, False, "takendown")
    return world


Probe = Callable[[Client, World, Subject, str | None], Awaitable[bool]]


def _uris(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["post"]["uri"] for item in body.get("feed", [])]


async def _in_feed(client: Client, nsid: str, params: dict[str, str], viewer: str | None,
                   post: str) -> bool:  # fmt: skip
    status, body = await client.get(nsid, {**params, "limit": "50"}, viewer=viewer)
    if status == 404:
        return False
    assert status == 200, (nsid, params, body)
    return post in _uris(body)


async def community_feed(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _in_feed(
        client, "social.coves.feed.getCommunity", {"community": s.community}, viewer, s.post
    )


async def discover(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _in_feed(client, "social.coves.feed.getDiscover", {}, viewer, s.post)


async def timeline(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _in_feed(client, "social.coves.feed.getTimeline", {}, viewer, s.post)


async def actor_posts(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _in_feed(client, "social.coves.actor.getPosts", {"actor": s.author}, viewer,
                          s.post)  # fmt: skip


async def search_posts(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _in_feed(client, "social.coves.feed.searchPosts", {"q": s.word}, viewer, s.post)


async def search_in_community(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {"q": s.word, "community": s.community}
    return await _in_feed(client, "social.coves.feed.searchPosts", params, viewer, s.post)


async def post_get(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    status, body = await client.get(
        "social.coves.community.post.get", {"uris": s.post}, viewer=viewer
    )
    assert status == 200, body
    entry = body["posts"][0]
    shown = entry["$type"] == "social.coves.community.post.get#postView"
    # Anything not shown says so with the flag the clients switch on.
    assert shown or entry.get("notFound") is True or entry.get("blocked") is True, entry
    return shown


async def get_comments(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    status, body = await client.get(
        "social.coves.community.comment.getComments", {"post": s.post}, viewer=viewer
    )
    if status == 404:
        assert body["error"] == "NotFound", body
        return False
    assert status == 200, body
    assert body["post"]["uri"] == s.post
    assert [c["comment"]["uri"] for c in body["comments"]] == [s.comment]
    return True


async def actor_comments(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    status, body = await client.get(
        "social.coves.actor.getComments", {"actor": world.commenter}, viewer=viewer
    )
    assert status == 200, body
    return s.comment in [c["uri"] for c in body["comments"]]


async def community_get(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    status, body = await client.get(
        "social.coves.community.get", {"community": s.community}, viewer=viewer
    )
    assert status in (200, 404), body
    return status == 200


def _asked_for(s: Subject) -> dict[str, str]:
    return {} if s.visibility == "public" else {"visibility": s.visibility}


async def community_list(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {**_asked_for(s), "limit": "100"}
    status, body = await client.get("social.coves.community.list", params, viewer=viewer)
    if status == 401:  # visibility=private needs a viewer
        return False
    assert status == 200, body
    return s.community in [c["did"] for c in body["communities"]]


async def community_search(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {**_asked_for(s), "q": s.community_name}
    status, body = await client.get("social.coves.community.search", params, viewer=viewer)
    if status == 401:
        return False
    assert status == 200, body
    return s.community in [c["did"] for c in body["communities"]]


async def profile(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    status, body = await client.get(
        "social.coves.actor.getProfile", {"actor": s.author}, viewer=viewer
    )
    assert status in (200, 404), body
    return status == 200


async def get_services(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {"dids": s.author}
    status, body = await client.get("social.coves.aggregator.getServices", params, viewer=viewer)
    assert status == 200, body
    return s.author in [v["did"] for v in body["views"]]


async def get_authorizations(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {"aggregatorDid": s.author, "limit": "100"}
    status, body = await client.get(
        "social.coves.aggregator.getAuthorizations", params, viewer=viewer
    )
    if status == 404:
        assert body["error"] == "AggregatorNotFound", body
        return False
    assert status == 200, body
    return s.community in [a["communityDid"] for a in body["authorizations"]]


async def list_for_community(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {"community": s.community, "limit": "100"}
    status, body = await client.get(
        "social.coves.aggregator.listForCommunity", params, viewer=viewer
    )
    if status == 404:
        assert body["error"] == "CommunityNotFound", body
        return False
    assert status == 200, body
    return s.author in [a["aggregatorDid"] for a in body["aggregators"]]


async def blocked_users(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {"limit": "100"}
    status, body = await client.get("social.coves.actor.getBlockedUsers", params, viewer=viewer)
    assert status == 200, body
    return s.author in [b["blockedDid"] for b in body["blocks"]]


async def blocked_communities(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    params = {"limit": "100"}
    status, body = await client.get(
        "social.coves.community.getBlockedCommunities", params, viewer=viewer
    )
    assert status == 200, body
    return s.community in [b["communityDid"] for b in body["blocks"]]


async def _resolves(client: Client, handle: str, did: str, viewer: str | None) -> bool:
    status, body = await client.get(
        "com.atproto.identity.resolveHandle", {"handle": handle}, viewer=viewer
    )
    if status == 400:
        assert body["error"] == "HandleNotFound", body
        return False
    assert status == 200, body
    assert body["did"] == did
    return True


async def resolve_author(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _resolves(client, s.author_handle, s.author, viewer)


async def resolve_community(client: Client, world: World, s: Subject, viewer: str | None) -> bool:
    return await _resolves(client, s.community_handle, s.community, viewer)


PostExpect = Callable[[str], frozenset[str]]
ENDPOINTS: dict[str, tuple[Probe, PostExpect, frozenset[str]]] = {
    # endpoint: (probe, who sees each rule's subject, viewers it applies to)
    "feed.getCommunity": (community_feed, post_visibility, ALL),
    "feed.getDiscover": (discover, lambda r: post_visibility(r, listed=True), ALL),
    "feed.getTimeline": (timeline, post_visibility, SIGNED_IN),
    "actor.getPosts": (actor_posts, post_visibility, ALL),
    "feed.searchPosts": (search_posts, lambda r: post_visibility(r, listed=True), ALL),
    "feed.searchPosts?community": (search_in_community, post_visibility, ALL),
    "community.post.get": (post_get, post_visibility, ALL),
    "community.comment.getComments": (get_comments, post_visibility, ALL),
    "actor.getComments": (actor_comments, post_visibility, ALL),
    "community.get": (community_get, lambda r: community_visibility(r, listing=False), ALL),
    "community.list": (community_list, lambda r: community_visibility(r, listing=True), ALL),
    "community.search": (community_search, lambda r: community_visibility(r, listing=True), ALL),
    "actor.getProfile": (profile, profile_visibility, ALL),
    "aggregator.getServices": (get_services, profile_visibility, ALL),
    "aggregator.getAuthorizations": (
        get_authorizations,
        lambda r: unasked_visibility(r) & profile_visibility(r),
        ALL,
    ),
    "aggregator.listForCommunity": (
        list_for_community,
        lambda r: community_visibility(r, listing=False) & profile_visibility(r),
        ALL,
    ),
    "actor.getBlockedUsers": (
        blocked_users,
        lambda r: frozenset({"blocks_author"}) if r in BLOCKED_AUTHORS else NONE,
        SIGNED_IN,
    ),
    "community.getBlockedCommunities": (
        blocked_communities,
        lambda r: frozenset({"blocks_community"}) if r in BLOCKED_COMMUNITIES else NONE,
        SIGNED_IN,
    ),
    "identity.resolveHandle(author)": (resolve_author, profile_visibility, ALL),
    "identity.resolveHandle(community)": (resolve_community, handle_visibility, ALL),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_rules_on_every_read_endpoint(
    client: Client, factory: Factory, endpoint: str
) -> None:
    probe, expect, applies = ENDPOINTS[endpoint]
    with trio.fail_after(120):
        world = await build_world(factory)
        wrong: list[str] = []
        for rule in POST_RULES:
            subject = world.subjects[rule]
            shown_to = expect(rule)
            for kind in VIEWERS:
                if kind not in applies:
                    continue
                seen = await probe(client, world, subject, world.viewers[kind])
                if seen != (kind in shown_to):
                    wrong.append(f"{rule} x {kind}: {'shown' if seen else 'hidden'}")
        assert not wrong, f"{endpoint}: " + "; ".join(wrong)


# -- comment-level rules in threads ------------------------------------------------------


async def test_comment_rules_in_threads_and_actor_lists(client: Client, factory: Factory) -> None:
    """Comments on a readable post: withheld authors and deleted comments become
    placeholders in threads (blocks per viewer) and drop out of actor.getComments."""
    with trio.fail_after(60):
        world = await build_world(factory)
        post = world.subjects["public"].post
        blockable = world.subjects["user_blocked"].author
        deactivated = world.subjects["author_deactivated"].author
        taken_down = world.subjects["author_taken_down"].author
        by_blocked = await factory.comment(post, blockable, content="from the blocked one")
        by_deactivated = await factory.comment(post, deactivated)
        by_taken_down = await factory.comment(post, taken_down)
        gone = await factory.comment(post, world.commenter, deleted=True)
        await factory.comment(post, world.commenter, parent=gone, content="reply to deleted")
        placeholders = {
            by_deactivated: ("account", ALL),
            by_taken_down: ("moderator", ALL),
            gone: ("author", ALL),
            by_blocked: ("blocked", frozenset({"blocks_author", "blocked_by_author"})),
        }
        wrong: list[str] = []
        for kind in VIEWERS:
            viewer = world.viewers[kind]
            status, body = await client.get(
                "social.coves.community.comment.getComments",
                {"post": post, "sort": "new"},
                viewer=viewer,
            )
            assert status == 200, body
            by_uri = {node["comment"]["uri"]: node["comment"] for node in body["comments"]}
            for uri, (reason, who) in placeholders.items():
                comment = by_uri[uri]
                if kind in who:
                    if not (comment.get("isDeleted") and comment["deletionReason"] == reason):
                        wrong.append(f"{reason} x {kind}: not a placeholder")
                    if "author" in comment or "record" in comment or "content" in comment:
                        wrong.append(f"{reason} x {kind}: placeholder leaks content")
                elif comment.get("isDeleted"):
                    wrong.append(f"{reason} x {kind}: placeholder for an allowed viewer")
            status, body = await client.get(
                "social.coves.actor.getComments", {"actor": blockable}, viewer=viewer
            )
            listed = by_blocked in [c["uri"] for c in body["comments"]]
            if listed == (kind in placeholders[by_blocked][1]):
                wrong.append(f"actor.getComments(blocked author) x {kind}: listed={listed}")
            status, body = await client.get(
                "social.coves.actor.getComments", {"actor": world.commenter}, viewer=viewer
            )
            if gone in [c["uri"] for c in body["comments"]]:
                wrong.append(f"actor.getComments lists a deleted comment for {kind}")
            for withheld in (deactivated, taken_down):
                status, _ = await client.get(
                    "social.coves.actor.getComments", {"actor": withheld}, viewer=viewer
                )
                if status != 404:
                    wrong.append(f"actor.getComments of a withheld account x {kind}: {status}")
        assert not wrong, "; ".join(wrong)


# -- the writes: the same rules decide what a comment, vote or subscription may reach ------

# The (rule, viewer) cells where a block stands between the viewer and the rule's post.
BLOCKED_CELLS = {
    ("community_blocked", "blocks_community"),
    ("user_blocked", "blocks_author"),
    ("user_blocked", "blocked_by_author"),
}


def write_refusal(rule: str, kind: str) -> str | None:
    """The error a comment or vote on the rule's post (or on the comment under it)
    answers the viewer: None where the reads show it, ``Blocked`` where a block
    stands, else the not-found error, as the reads would answer."""
    if kind in post_visibility(rule):
        return None
    return "Blocked" if (rule, kind) in BLOCKED_CELLS else "NotFound"


def subscribe_refusal(rule: str, kind: str) -> str | None:
    """The error subscribing to the rule's community answers: readable as
    community.get (rules 3, 4) and no block either way."""
    if kind not in community_visibility(rule, listing=False):
        return "NotFound"
    return "Blocked" if (rule, kind) == ("community_blocked", "blocks_community") else None


def refusal(why: Why | None) -> str | None:
    """The error the writes make of the rules' answer (coves.writes.records.refuse)."""
    try:
        refuse(why, XRPCError(404, "NotFound", "not found"))
    except XRPCError as error:
        return error.error
    return None


async def write_answers(
    db: Database, svc: ReadServices, s: Subject, viewer: str
) -> dict[str, str | None]:
    row = await resolve(db, svc, s.community)
    assert row is not None
    return {
        "vote/comment on the post": refusal((await targets.post(db, svc, viewer, s.post)).why),
        "vote/reply on the comment": refusal(
            (await targets.comment(db, svc, viewer, s.comment)).why
        ),
        "subscribe": refusal(await targets.community(db, viewer, row)),
    }


async def test_rules_decide_every_write_target(
    client: Client, factory: Factory, read_ctx: AppContext
) -> None:
    """Every write's subject, for every rule and signed-in viewer: what the writes
    (comment, vote, subscribe) refuse is what the reads hide, and a block is named."""
    db, svc = read_ctx.db, read_ctx.read
    with trio.fail_after(120):
        world = await build_world(factory)
        wrong: list[str] = []
        for rule in POST_RULES:
            s = world.subjects[rule]
            for kind in sorted(SIGNED_IN):
                viewer = world.viewers[kind]
                assert viewer is not None
                expected = {
                    "vote/comment on the post": write_refusal(rule, kind),
                    "vote/reply on the comment": write_refusal(rule, kind),
                    "subscribe": subscribe_refusal(rule, kind),
                }
                got = await write_answers(db, svc, s, viewer)
                wrong += [
                    f"{what}: {rule} x {kind}: {got[what]} (expected {expected[what]})"
                    for what in expected
                    if got[what] != expected[what]
                ]
        # Comments under a readable post: withheld or deleted ones take no replies or
        # votes (the reads show placeholders); one across a user block is Blocked.
        public = world.subjects["public"]
        blockable = world.subjects["user_blocked"].author
        comments = {
            await factory.comment(public.post, blockable): lambda kind: (
                "Blocked" if kind in {"blocks_author", "blocked_by_author"} else None
            ),
            await factory.comment(public.post, world.subjects["author_deactivated"].author): (
                lambda kind: "NotFound"
            ),
            await factory.comment(public.post, world.subjects["author_taken_down"].author): (
                lambda kind: "NotFound"
            ),
            await factory.comment(public.post, world.commenter, deleted=True): (
                lambda kind: "NotFound"
            ),
        }
        for n, (uri, expect) in enumerate(comments.items()):
            for kind in sorted(SIGNED_IN):
                viewer = world.viewers[kind]
                assert viewer is not None
                got_one = refusal((await targets.comment(db, svc, viewer, uri)).why)
                if got_one != expect(kind):
                    wrong.append(f"comment #{n} x {kind}: {got_one} (expected {expect(kind)})")
        # A community whose account blocks a viewer takes nothing more from them,
        # though its posts stay readable to them.
        outsider = world.viewers["outsider"]
        assert outsider is not None
        await factory.user_block(public.community, outsider)
        got = await write_answers(db, svc, public, outsider)
        if set(got.values()) != {"Blocked"}:
            wrong.append(f"blocked by the community: {got}")
        status, body = await client.get(
            "social.coves.community.post.get", {"uris": public.post}, viewer=outsider
        )
        assert status == 200 and body["posts"][0]["uri"] == public.post, body
        assert not wrong, "; ".join(wrong)
