"""``actor.getComments``: an account's comments for its profile page, newest first.

Skeleton: a keyset page of the actor's live comments (comments_commenter),
optionally only under posts of one community. Hydration: the comments with
their author, and the posts they hang from. Rules: a comment is listed only
where the viewer could open its thread (the post is shown to them) and its
content is shown to them; there are no placeholders in this list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.db import Database
from coves.db.queries import actors as actor_sql
from coves.db.queries import comments as comment_sql
from coves.identity import IdentityResolver
from coves.params import limit_param, one_str
from coves.read import actors, communities, facts, keyset, relations, rules
from coves.read.services import ReadServices
from coves.read.views.comment import comment_view, viewer_state

CURSOR = "actor.comments"
DEFAULT_LIMIT, MAX_LIMIT = 50, 100


async def actor_comments(
    db: Database,
    svc: ReadServices,
    identity: IdentityResolver | None,
    params: Mapping[str, Any],
    viewer: str | None,
) -> dict[str, Any]:
    actor = (await actors.visible_actor(db, identity, params))["did"]
    limit = limit_param(params, default=DEFAULT_LIMIT, high=MAX_LIMIT)
    community: str | None = None
    ident = one_str(params, "community")
    if ident is not None:
        row = await communities.resolve_cached(db, svc, ident)
        if row is None:
            return {"comments": []}
        community = row["did"]
    kind = f"{CURSOR}:{actor}:{community or ''}"
    cursor = one_str(params, "cursor")
    after = keyset.decode(svc.cursors, kind, cursor) if cursor is not None else None

    page = await actor_sql.comment_page(db, actor, limit + 1, after, community)
    more = len(page) > limit
    page = page[:limit]
    uris = [row["uri"] for row in page]
    by_uri = {row["uri"]: row for row in await comment_sql.live_by_uris(db, uris)}
    rows = [by_uri[uri] for uri in uris if uri in by_uri]
    posts = await svc.posts.load(list({row["root_uri"] for row in rows}))
    state = await relations.load(
        db,
        viewer,
        communities=[p.community_did for p in posts.values()],
        actors=[actor, *(p.facts.author.did for p in posts.values())],
        subjects=[row["uri"] for row in rows],
    )
    shown = []
    for row in rows:
        post = posts.get(row["root_uri"])
        if post is None or rules.may_see_post(post.facts, state.relations) is not None:
            continue
        if rules.may_see_comment(facts.comment(row), state.relations) is not None:
            continue
        view = comment_view(row, blobs=svc.blobs)
        if viewer is not None:
            view["viewer"] = viewer_state(state.votes.get(row["uri"]))
        shown.append(view)
    body: dict[str, Any] = {"comments": shown}
    if more and page:
        last = page[-1]
        body["cursor"] = keyset.encode(svc.cursors, kind, last["ranked_at"], last["uri"])
    return body
