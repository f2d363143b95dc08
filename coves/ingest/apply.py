"""Deciding and writing one batch, inside its single transaction.

Runs in the database worker thread with the batch's connection. It reads
what the decisions need (stored revs, comment threading, the old targets
of rows about to change), decides per record which event wins, then writes
each table with one set-based statement and recounts every counter the
batch touched. All SQL is in :mod:`coves.db.queries.ingest`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from coves.db.queries import ingest as q
from coves.ingest import events as ev
from coves.ingest.events import (
    AccountEvent,
    Commit,
    DeadLetter,
    IdentityEvent,
    Ignored,
    Reason,
    Skip,
)
from coves.ingest.records import (
    ActorProfileRow,
    AggregatorRow,
    AuthorizationRow,
    CommentRow,
    CommunityRow,
    PostRow,
    SubjectRow,
    VoteRow,
)


@dataclass
class Decisions:
    """What the transaction did, for counting and post-commit hooks."""

    skipped_by: list[tuple[Commit, str]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    identity_changed: list[str] = field(default_factory=list)
    accounts_changed: list[str] = field(default_factory=list)
    needs_verification: list[tuple[str, str]] = field(default_factory=list)
    applied_commits: list[Commit] = field(default_factory=list)


def _at(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1_000_000, UTC)


def _json_list(values: list[str]) -> str | None:
    return orjson.dumps(values).decode() if values else None


def _dead_from_commit(commit: Commit, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(
        reason,
        detail,
        commit.raw,
        kind="commit",
        did=commit.did,
        collection=commit.collection,
        rkey=commit.rkey,
        time_us=commit.time_us,
    )


def decide_winners(
    commits: list[Commit],
    stored: dict[tuple[str, str, str], str],
    threads: dict[str, tuple[str, str, bool]],
    out: Decisions,
) -> list[Commit]:
    """Per record, the newest event that is newer than what is stored.

    Events are walked in rev order so a comment update that moves its
    reply refs is judged against the threading it would really replace
    (stored or an earlier event of this batch) and refused.
    """
    groups: dict[tuple[str, str, str], list[Commit]] = defaultdict(list)
    for commit in commits:
        groups[commit.key].append(commit)
    winners: list[Commit] = []
    for key, group in groups.items():
        if len(group) > 1:
            group.sort(key=lambda c: c.rev)
        current = stored.get(key)
        thread: tuple[str, str] | None = None
        if key[1] == ev.COMMENT:
            known = threads.get(group[0].uri)
            if known is not None and known[2]:
                thread = (known[0], known[1])
        winner: Commit | None = None
        for commit in group:
            if current is not None and commit.rev <= current:
                out.skipped_by.append((commit, Skip.STALE))
                continue
            if key[1] == ev.COMMENT:
                if commit.op == "delete":
                    new_thread = None
                else:
                    row: CommentRow = commit.row
                    new_thread = (row.root_uri, row.parent_uri)
                    if thread is not None and new_thread != thread:
                        out.dead.append(
                            _dead_from_commit(
                                commit,
                                Reason.IMMUTABLE_THREADING,
                                "a live comment's reply root and parent cannot change",
                            )
                        )
                        continue
                thread = new_thread
            if winner is not None:
                out.skipped_by.append((winner, Skip.SUPERSEDED))
            winner = commit
            current = commit.rev
        if winner is not None:
            winners.append(winner)
    return winners


@dataclass
class Batch:
    """A parsed batch, classified, before it touches the database."""

    commits: list[Commit] = field(default_factory=list)
    identities: list[IdentityEvent] = field(default_factory=list)
    accounts: list[AccountEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    cursor: int | None = None  # newest time_us of any event in the batch


@dataclass
class Touched:
    """Keys whose rows or counters this batch must write or recount."""

    users: set[str] = field(default_factory=set)
    posts: set[str] = field(default_factory=set)
    comments: set[str] = field(default_factory=set)
    communities: set[str] = field(default_factory=set)
    aggregators: set[str] = field(default_factory=set)


def apply_batch(
    conn: q.Conn, batch: Batch, *, instance_did: str, skip_did_web_verification: bool
) -> Decisions:
    commits, identities, accounts = batch.commits, batch.identities, batch.accounts
    dead, cursor = batch.dead, batch.cursor
    out = Decisions()
    q.lock(conn)
    keys = list({c.key for c in commits})
    stored = q.record_states(conn, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    comment_uris = list({c.uri for c in commits if c.collection == ev.COMMENT})
    threads = q.comment_threads(conn, comment_uris)
    winners = decide_winners(commits, stored, threads, out)
    out.applied_commits = winners

    by_collection: dict[str, list[Commit]] = defaultdict(list)
    for commit in winners:
        by_collection[commit.collection].append(commit)

    touched = Touched()
    for commit in winners:
        if commit.op != "delete":
            touched.users.add(commit.did)

    if winners:
        q.upsert_record_states(
            conn,
            [
                [c.did for c in winners],
                [c.collection for c in winners],
                [c.rkey for c in winners],
                [c.rev for c in winners],
                [c.cid for c in winners],
                [c.op == "delete" for c in winners],
                [c.time_us for c in winners],
            ],
        )

    # Communities first: later statements in the batch may recount them.
    _communities(conn, by_collection[ev.PROFILE], out, instance_did, skip_did_web_verification)
    touched.communities.update(c.did for c in by_collection[ev.PROFILE])

    _posts(conn, by_collection[ev.POST], touched)
    _comments(conn, by_collection[ev.COMMENT], threads, touched)
    _votes(conn, by_collection[ev.VOTE], touched)
    _subjects(conn, "subscriptions", by_collection[ev.SUBSCRIPTION], touched)
    _subjects(conn, "blocks", by_collection[ev.BLOCK], touched)
    _aggregators(conn, by_collection[ev.AGGREGATOR], touched)
    _authorizations(conn, by_collection[ev.AUTHORIZATION], touched)

    q.ensure_users(conn, touched.users)
    _actor_profiles(conn, by_collection[ev.ACTOR_PROFILE])
    _identities(conn, identities, out)
    if accounts:
        latest: dict[str, AccountEvent] = {}
        for account in accounts:
            if account.did not in latest or latest[account.did].time_us < account.time_us:
                latest[account.did] = account
        rows = list(latest.values())
        out.accounts_changed = q.apply_accounts(
            conn,
            [a.did for a in rows],
            [a.active for a in rows],
            [a.status for a in rows],
            [a.time_us for a in rows],
        )

    q.recount_posts(conn, sorted(touched.posts))
    q.recount_comments(conn, sorted(touched.comments))
    q.recount_communities(conn, sorted(touched.communities))
    q.recount_aggregators(conn, sorted(touched.aggregators))

    all_dead = dead + out.dead
    if all_dead:
        q.insert_dead_letters(
            conn,
            [
                [d.reason for d in all_dead],
                [d.detail for d in all_dead],
                [d.did for d in all_dead],
                [d.collection for d in all_dead],
                [d.rkey for d in all_dead],
                [d.time_us for d in all_dead],
                [d.raw.replace("\x00", "") for d in all_dead],
            ],
        )
    if cursor is not None:
        q.save_cursor(conn, cursor)
    return out


def _communities(
    conn: q.Conn,
    commits: list[Commit],
    out: Decisions,
    instance_did: str,
    skip_verification: bool,
) -> None:
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.delete_communities(conn, [c.did for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    hosts = q.community_hosts(conn, [c.did for c in live])
    cols: list[list[Any]] = [[] for _ in range(21)]
    keep: list[str] = []
    for commit in live:
        row: CommunityRow = commit.row
        previous = hosts.get(commit.did)
        if row.hosted_by == instance_did or skip_verification:
            verification = "verified"
        else:
            verification = "unverified"
            if previous is not None and previous[0] == row.hosted_by:
                keep.append(commit.did)
                if previous[1] == "unverified":
                    out.needs_verification.append((commit.did, row.hosted_by))
            else:
                out.needs_verification.append((commit.did, row.hosted_by))
        values = (
            commit.did,
            row.name,
            row.display_name,
            row.description,
            row.description_facets,
            row.avatar,
            row.banner,
            row.created_by,
            row.hosted_by,
            row.visibility,
            row.allow_external_discovery,
            row.moderation_type,
            orjson.dumps(row.content_warnings).decode(),
            row.rules,
            orjson.dumps(row.categories).decode(),
            row.language,
            orjson.dumps(row.search_trigrams).decode(),
            row.record,
            commit.cid,
            row.created_at,
            verification,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_communities(conn, cols, keep)


def _posts(conn: q.Conn, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    uris = [c.uri for c in commits]
    for community, author in q.old_refs(conn, "post", uris).values():
        touched.communities.add(community)
        touched.aggregators.add(author)
    touched.posts.update(uris)
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.soft_delete(conn, "posts", [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    touched.communities.update(c.did for c in commits)
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(14)]
    for commit in live:
        row: PostRow = commit.row
        touched.users.add(row.author)
        touched.aggregators.add(row.author)
        values = (
            commit.uri,
            commit.rkey,
            commit.cid,
            commit.did,
            row.author,
            row.title,
            row.content,
            row.facets,
            row.embed,
            row.labels,
            _json_list(row.langs),
            row.record,
            row.created_at,
            _at(commit.time_us) if commit.op == "update" else None,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_posts(conn, cols)


def _comments(
    conn: q.Conn,
    commits: list[Commit],
    threads: dict[str, tuple[str, str, bool]],
    touched: Touched,
) -> None:
    if not commits:
        return
    for commit in commits:
        old = threads.get(commit.uri)
        if old is not None:
            touched.posts.add(old[0])
            touched.comments.add(old[1])
        touched.comments.add(commit.uri)
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.delete_comments(conn, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(16)]
    for commit in live:
        row: CommentRow = commit.row
        touched.posts.add(row.root_uri)
        touched.comments.add(row.parent_uri)
        values = (
            commit.uri,
            commit.rkey,
            commit.cid,
            commit.did,
            row.root_uri,
            row.root_cid,
            row.parent_uri,
            row.parent_cid,
            row.content,
            row.facets,
            row.embed,
            row.labels,
            _json_list(row.langs),
            row.record,
            row.created_at,
            _at(commit.time_us) if commit.op == "update" else None,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_comments(conn, cols)


def _votes(conn: q.Conn, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    pairs: set[tuple[str, str]] = set(q.old_refs(conn, "vote", [c.uri for c in commits]).values())
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.delete_votes(conn, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if live:
        cols: list[list[Any]] = [[] for _ in range(9)]
        for commit in live:
            row: VoteRow = commit.row
            pairs.add((commit.did, row.subject_uri))
            values = (
                commit.uri,
                commit.rkey,
                commit.cid,
                commit.rev,
                commit.did,
                row.subject_uri,
                row.subject_cid,
                row.direction,
                row.created_at,
            )
            for col, value in zip(cols, values, strict=True):
                col.append(value)
        q.upsert_votes(conn, cols)
    ordered = sorted(pairs)
    q.recompute_effective(conn, [p[0] for p in ordered], [p[1] for p in ordered])
    for _voter, subject in ordered:
        if f"/{ev.COMMENT}/" in subject:
            touched.comments.add(subject)
        else:
            touched.posts.add(subject)


def _subjects(conn: q.Conn, table: str, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    if table == "subscriptions":
        for _user, community in q.old_refs(conn, "subscription", [c.uri for c in commits]).values():
            touched.communities.add(community)
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.soft_delete(conn, table, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(7)]
    for commit in live:
        row: SubjectRow = commit.row
        touched.users.add(row.community)
        if table == "subscriptions":
            touched.communities.add(row.community)
        values = (
            commit.uri,
            commit.did,
            commit.rkey,
            row.community,
            row.content_visibility,
            commit.cid,
            row.created_at,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_subjects(conn, table, cols)


def _aggregators(conn: q.Conn, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    touched.aggregators.update(c.did for c in commits)
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.delete_aggregators(conn, [c.did for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(10)]
    for commit in live:
        row: AggregatorRow = commit.row
        values = (
            commit.did,
            row.display_name,
            row.description,
            row.avatar,
            row.config_schema,
            row.source_url,
            row.maintainer,
            row.record,
            commit.cid,
            row.created_at,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_aggregators(conn, cols)


def _authorizations(conn: q.Conn, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    for _community, aggregator in q.old_refs(
        conn, "authorization", [c.uri for c in commits]
    ).values():
        touched.aggregators.add(aggregator)
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.soft_delete(
        conn,
        "aggregator_authorizations",
        [c.uri for c in deleted],
        [_at(c.time_us) for c in deleted],
    )
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(11)]
    for commit in live:
        row: AuthorizationRow = commit.row
        touched.users.add(row.aggregator)
        touched.aggregators.add(row.aggregator)
        values = (
            commit.uri,
            commit.did,
            commit.rkey,
            row.aggregator,
            row.enabled,
            row.config,
            row.created_by,
            row.disabled_at,
            row.disabled_by,
            commit.cid,
            row.created_at,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_authorizations(conn, cols)


def _actor_profiles(conn: q.Conn, commits: list[Commit]) -> None:
    if not commits:
        return
    cols: list[list[Any]] = [[] for _ in range(5)]
    for commit in commits:
        row: ActorProfileRow | None = commit.row if commit.op != "delete" else None
        values = (
            commit.did,
            row.display_name if row else None,
            row.description if row else None,
            row.avatar if row else None,
            row.banner if row else None,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.update_actor_profiles(conn, cols)


def _identities(conn: q.Conn, identities: list[IdentityEvent], out: Decisions) -> None:
    if not identities:
        return
    latest: dict[str, IdentityEvent] = {}
    for identity in identities:
        if identity.did not in latest or latest[identity.did].time_us < identity.time_us:
            latest[identity.did] = identity
    # Two DIDs claiming one handle in the same batch: the newer claim wins it.
    claims: dict[str, IdentityEvent] = {}
    for identity in latest.values():
        if identity.handle is None:
            continue
        held = claims.get(identity.handle)
        if held is None or held.time_us < identity.time_us:
            claims[identity.handle] = identity
    rows = list(latest.values())
    handles = [r.handle if r.handle is not None and claims[r.handle] is r else None for r in rows]
    changed = q.apply_identities(conn, [r.did for r in rows], handles, [r.time_us for r in rows])
    out.identity_changed.extend(changed)
