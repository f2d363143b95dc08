"""Deciding and writing one batch, inside its single transaction.

Runs in the database worker thread with the batch's connection. It reads
what the decisions need (stored revs, comment threading, the old targets
of rows about to change), decides per record which event wins, then writes
each table with one set-based statement. Posts and comments the batch
rewrote, or that something referenced before they arrived, are recounted;
new ones are inserted with their counts; every other post and comment takes
the exact net change of the batch's decisions (votes that became or stopped being
effective, comments that became or stopped being live), aggregated per row
into one statement per table. Community counters live in their own narrow
table (``community_stats``): subscriber counts of communities whose
subscriptions changed are recounted, a post becoming live only adds to its
community's post count, and only a live post deleted or edited makes its
community's post count be recounted. Aggregator counters the batch touched
are recounted. All SQL is in :mod:`coves.db.queries.ingest`.
"""

from __future__ import annotations

import select
from collections import defaultdict
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from coves.changed import Changed
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
    UserBlockRow,
)
from coves.posting.rules import WITHHELD_REASON, ContentRules, violation


@dataclass
class Decisions:
    """What the transaction did, for counting and post-commit hooks."""

    def merge(self, other: Decisions) -> Decisions:
        self.skipped_by.extend(other.skipped_by)
        self.dead.extend(other.dead)
        self.identity_changed.extend(other.identity_changed)
        self.accounts_changed.extend(other.accounts_changed)
        self.needs_verification.extend(other.needs_verification)
        self.applied_commits.extend(other.applied_commits)
        self.withheld.extend(other.withheld)
        self.users.update(other.users)
        self.changed = self.changed | other.changed
        return self

    skipped_by: list[tuple[Commit, str]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    identity_changed: list[str] = field(default_factory=list)  # events applied
    accounts_changed: list[str] = field(default_factory=list)
    needs_verification: list[tuple[str, str]] = field(default_factory=list)
    applied_commits: list[Commit] = field(default_factory=list)
    # Live post versions applied but kept out of views, with why (content rules).
    withheld: list[tuple[Commit, str]] = field(default_factory=list)
    users: set[str] = field(default_factory=set)  # DIDs that have a users row now
    # What the batch makes stale in the caches of every process (coves.changed).
    changed: Changed = field(default_factory=Changed)


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
) -> tuple[list[Commit], list[Commit]]:
    """Per record, the newest event that is newer than what is stored.

    Events are walked in rev order so a comment update that moves its
    reply refs is judged against the threading it would really replace
    (stored or an earlier event of this batch) and refused. When the
    newest event is a delete, the newest live version before it in the
    batch is returned too (a "prelude", applied before the delete), so a
    create and delete in one batch leave the same soft-deleted row as
    applying them one at a time would.
    """
    groups: dict[tuple[str, str, str], list[Commit]] = defaultdict(list)
    for commit in commits:
        groups[commit.key].append(commit)
    winners: list[Commit] = []
    preludes: list[Commit] = []
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
        last_live: Commit | None = None
        superseded: list[Commit] = []
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
                superseded.append(winner)
                if winner.op != "delete":
                    last_live = winner
            winner = commit
            current = commit.rev
        if winner is None:
            continue
        winners.append(winner)
        if winner.op == "delete" and last_live is not None:
            preludes.append(last_live)
            superseded.remove(last_live)
        out.skipped_by.extend((c, Skip.SUPERSEDED) for c in superseded)
    return winners, preludes


@dataclass
class Batch:
    """A parsed batch, classified, before it touches the database."""

    commits: list[Commit] = field(default_factory=list)
    identities: list[IdentityEvent] = field(default_factory=list)
    accounts: list[AccountEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    cursor: int | None = None  # the source's position after this batch (Jetstream: time_us)
    frames: int = 0
    newest_us: int | None = None  # newest time_us of any event in the batch
    source: str = q.CURSOR_NAME  # the ingest_cursor row the cursor is saved under
    # The consumer's session (q.open_session); the batch refuses to commit if the
    # server restarted since, so a crash that took commits back cannot go unseen.
    session: str | None = None

    @property
    def size(self) -> int:
        """Events that write domain state (what poison isolation bisects)."""
        return len(self.commits) + len(self.identities) + len(self.accounts)

    def like(self, *, dead: list[DeadLetter] | None = None, cursor: int | None = None) -> Batch:
        """An empty batch for the same source and session."""
        return Batch(dead=dead or [], cursor=cursor, source=self.source, session=self.session)

    def split(self) -> tuple[Batch, Batch]:
        """Two halves in order; the cursor and parse dead letters go with the second,
        so the cursor only moves once both halves are committed."""
        items: list[Commit | IdentityEvent | AccountEvent] = [
            *self.commits,
            *self.identities,
            *self.accounts,
        ]
        middle = len(items) // 2
        halves = (
            self.like(),
            self.like(dead=self.dead, cursor=self.cursor),
        )
        for half, part in zip(halves, (items[:middle], items[middle:]), strict=True):
            for item in part:
                if isinstance(item, Commit):
                    half.commits.append(item)
                elif isinstance(item, IdentityEvent):
                    half.identities.append(item)
                else:
                    half.accounts.append(item)
        return halves


@dataclass
class Touched:
    """Keys whose rows or counters this batch must write or recount."""

    users: set[str] = field(default_factory=set)
    posts: set[str] = field(default_factory=set)
    comments: set[str] = field(default_factory=set)
    # communities whose subscriber count, resp. post count, must be recounted
    subscribed: set[str] = field(default_factory=set)
    communities: set[str] = field(default_factory=set)
    aggregators: set[str] = field(default_factory=set)
    # did -> profile columns, written after users exist; the last phase wins
    profiles: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # Net counter changes of posts/comments that existed before the batch:
    # uri -> [upvotes, downvotes, comments (posts) or replies (comments)].
    post_deltas: dict[str, list[int]] = field(default_factory=dict)
    # community -> posts that became live in this batch (counted without a
    # recount unless the community is recounted anyway)
    new_posts: dict[str, list[str]] = field(default_factory=dict)
    comment_deltas: dict[str, list[int]] = field(default_factory=dict)
    # community -> its contentRules, for communities with live posts in the batch
    rules: dict[str, ContentRules] = field(default_factory=dict)
    withheld: set[str] = field(default_factory=set)  # post URIs kept out of views

    def add(self, subject: str, up: int, down: int, children: int) -> None:
        """Add to the counters of a post or comment (told apart by its URI)."""
        deltas = self.comment_deltas if _is_comment(subject) else self.post_deltas
        delta = deltas.setdefault(subject, [0, 0, 0])
        delta[0] += up
        delta[1] += down
        delta[2] += children


def _is_comment(uri: str) -> bool:
    return f"/{ev.COMMENT}/" in uri


def apply_batch(
    conn: q.Conn,
    batch: Batch,
    *,
    instance_did: str,
    skip_did_web_verification: bool,
    known_users: Container[str] = frozenset(),
    meanwhile: Callable[[], None] | None = None,
) -> Decisions:
    """Apply in one transaction in pipeline mode: BEGIN, the writes and COMMIT stream
    to the server without waiting for each result; only the reads that decisions
    need cost a round trip. ``conn`` must be outside any transaction.

    ``known_users``: DIDs known to have a users row already (users rows are
    never deleted), so the batch does not insert them again. ``meanwhile``:
    work to do in this thread once every statement is sent, while the server
    executes them (it must not raise)."""
    with conn.pipeline(), conn.transaction():
        out = _apply_batch(
            conn,
            batch,
            instance_did=instance_did,
            skip_did_web_verification=skip_did_web_verification,
            known_users=known_users,
        )
        if meanwhile is not None:
            _send_all(conn)
            meanwhile()
        return out


def _send_all(conn: q.Conn) -> None:
    """Push whatever libpq still buffers to the server, so it has the whole batch
    before this thread turns to other work."""
    pgconn = conn.pgconn
    while pgconn.flush() == 1:
        select.select([], [pgconn.socket], [], 1.0)


def _apply_batch(
    conn: q.Conn,
    batch: Batch,
    *,
    instance_did: str,
    skip_did_web_verification: bool,
    known_users: Container[str],
) -> Decisions:
    commits, identities, accounts = batch.commits, batch.identities, batch.accounts
    dead, cursor = batch.dead, batch.cursor
    out = Decisions()
    q.lock(conn, batch.session)
    # Every read the decisions need before the first write, sent together (one
    # round trip in pipeline mode), then waited for.
    keys = list({c.key for c in commits})
    uris: dict[str, set[str]] = defaultdict(set)
    vote_pairs: set[tuple[str, str]] = set()
    for commit in commits:
        uris[commit.collection].add(commit.uri)
        if commit.collection == ev.VOTE and commit.op != "delete":
            vote_pairs.add((commit.did, commit.row.subject_uri))
    pairs = sorted(vote_pairs)
    # Stored revs of rows keyed by URI: posts, comments and subscriptions come with
    # the reads below, live votes with live_votes (a deleted vote's rev is in its
    # tombstone), blocks and authorizations (rare) with stored_revs.
    row_revs: dict[str, str] = {}
    fetches = (
        q.stored_revs(
            conn,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            {
                "blocks": sorted(uris[ev.BLOCK]),
                "user_blocks": sorted(uris[ev.ACTOR_BLOCK]),
                "aggregator_authorizations": sorted(uris[ev.AUTHORIZATION]),
            },
        ),
        q.comment_threads(conn, sorted(uris[ev.COMMENT]), row_revs),
        q.stored_posts(conn, sorted(uris[ev.POST]), row_revs),
        q.old_refs(conn, "subscription", sorted(uris[ev.SUBSCRIPTION]), row_revs),
        # Live votes on every pair a vote of the batch touches (a superset of what
        # the live phase needs: pairs no applied vote changes are left as they are).
        q.live_votes(conn, sorted(uris[ev.VOTE]), [p[0] for p in pairs], [p[1] for p in pairs]),
        q.awaited(conn, sorted(uris[ev.POST] | uris[ev.COMMENT])),
        # contentRules of the communities live posts of the batch go to.
        q.content_rules(
            conn, sorted({c.did for c in commits if c.collection == ev.POST and c.op != "delete"})
        ),
    )
    states, other_revs = fetches[0]()
    threads = fetches[1]()
    stored_posts = fetches[2]()
    subscription_refs = fetches[3]()
    votes_before = fetches[4]()
    awaited = fetches[5]()
    stored_rules = fetches[6]()
    row_revs.update(other_revs)
    for vote_uri, _voter, _subject, vote_rev, _effective, _direction in votes_before:
        row_revs[vote_uri] = vote_rev
    stored = dict(states)
    for commit in commits:
        rev = row_revs.get(commit.uri)
        if rev is not None and (commit.key not in stored or stored[commit.key] < rev):
            stored[commit.key] = rev
    winners, preludes = decide_winners(commits, stored, threads, out)
    out.applied_commits = winners + preludes

    touched = Touched()
    touched.subscribed.update(community for _user, community in subscription_refs.values())
    touched.rules = {did: ContentRules.parse(rules) for did, rules in stored_rules.items()}
    for commit in winners:  # a profile changed in this batch rules the batch's posts
        if commit.collection == ev.PROFILE:
            record = commit.row.record if commit.op != "delete" else None
            rules = ContentRules.from_profile(orjson.loads(record)) if record else None
            touched.rules[commit.did] = rules or ContentRules()
    # Every DID a live version referenced gets a users row, including versions a
    # newer event in the batch superseded: one-at-a-time application creates them too.
    superseded = [c for c, why in out.skipped_by if why == Skip.SUPERSEDED]
    for commit in (*out.applied_commits, *superseded):
        if commit.op != "delete":
            touched.users.update(_referenced_dids(commit))

    # Rows keyed by URI carry their rev; record_state keeps the rest (see
    # _needs_state), the newer of the two being the stored rev.
    states_written = [c for c in winners if _needs_state(c, states)]
    if states_written:
        q.upsert_record_states(
            conn,
            [
                [c.did for c in states_written],
                [c.collection for c in states_written],
                [c.rkey for c in states_written],
                [c.rev for c in states_written],
                [c.cid for c in states_written],
                [c.op == "delete" for c in states_written],
                [c.time_us for c in states_written],
            ],
        )

    # Live versions first, then deletes: a prelude must land before its delete.
    # Posts and comments are written last, once every counter change of the batch
    # is known: a new row is inserted with its counters instead of updated.
    content_phases: list[tuple[list[Commit], list[Commit]]] = []
    for first, phase in (
        (True, [c for c in out.applied_commits if c.op != "delete"]),
        (False, [c for c in winners if c.op == "delete"]),
    ):
        by_collection: dict[str, list[Commit]] = defaultdict(list)
        for commit in phase:
            by_collection[commit.collection].append(commit)
        _communities(conn, by_collection[ev.PROFILE], out, instance_did, skip_did_web_verification)
        content_phases.append((by_collection[ev.POST], by_collection[ev.COMMENT]))
        # The live phase decides from the votes read before any write; the delete
        # phase (after the live phase's writes) reads again.
        _votes(conn, by_collection[ev.VOTE], touched, votes_before if first else None)
        _subjects(conn, "subscriptions", by_collection[ev.SUBSCRIPTION], touched)
        _subjects(conn, "blocks", by_collection[ev.BLOCK], touched)
        _aggregators(conn, by_collection[ev.AGGREGATOR], touched)
        _authorizations(conn, by_collection[ev.AUTHORIZATION], touched)
        _actor_profiles(conn, by_collection[ev.ACTOR_PROFILE], touched)
        _user_blocks(conn, by_collection[ev.ACTOR_BLOCK], touched)

    _comment_deltas(winners, threads, touched)
    for post_commits, comment_commits in content_phases:
        _posts(conn, post_commits, stored_posts, awaited, touched, out=out)
        _comments(conn, comment_commits, threads, awaited, touched)

    q.ensure_users(conn, [did for did in touched.users if did not in known_users])
    out.users = touched.users
    if touched.profiles:
        profiles = list(touched.profiles.values())
        q.update_actor_profiles(conn, [list(col) for col in zip(*profiles, strict=True)])
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

    _community_post_deltas(winners, stored_posts, touched)
    # Rows this batch rewrote are recounted (an edit may move ranked_at), and so
    # are new rows that votes or replies referenced before they existed; new rows
    # were inserted with their counters (see _initial_counts); every other post or
    # comment only takes the net change the batch's decisions made to what counts.
    recount_posts = {u for u in touched.posts if u in stored_posts or u in awaited}
    recount_comments = {u for u in touched.comments if u in threads or u in awaited}
    q.recount_posts(conn, sorted(recount_posts))
    q.recount_comments(conn, sorted(recount_comments))
    q.add_counts(conn, "posts", _delta_cols(touched.post_deltas, recount_posts))
    q.add_counts(conn, "comments", _delta_cols(touched.comment_deltas, recount_comments))
    q.forget_awaited(conn, sorted(awaited & (recount_posts | recount_comments)))
    q.recount_subscribers(conn, sorted(touched.subscribed))
    q.recount_community_posts(conn, sorted(touched.communities))
    arrivals = sorted(
        (community, uri)
        for community, uris in touched.new_posts.items()
        if community not in touched.communities
        for uri in uris
    )
    q.add_community_posts(conn, [a[0] for a in arrivals], [a[1] for a in arrivals])
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
        q.save_cursor(conn, cursor, batch.source)
    out.changed = _what_changed(out, threads, stored_posts, touched)
    return out


def _what_changed(
    out: Decisions,
    threads: dict[str, tuple[str, str, bool]],
    stored_posts: dict[str, tuple[str, str, bool]],
    touched: Touched,
) -> Changed:
    """What the batch makes stale (coves.changed): the repos written (and the authors
    of posts written into communities), every post and comment whose row or counters
    changed and the threads they sit in, and every actor shown differently now."""
    repos: set[str] = set()
    posts = touched.posts | touched.post_deltas.keys()
    comments = touched.comments | touched.comment_deltas.keys()
    actors = {*out.identity_changed, *out.accounts_changed}
    for commit in out.applied_commits:
        repos.add(commit.did)
        collection = commit.collection
        if collection == ev.POST:
            posts.add(commit.uri)
            stored = stored_posts.get(commit.uri)
            author = commit.row.author if commit.row is not None else stored and stored[1]
            if author:
                repos.add(author)
        elif collection == ev.COMMENT:
            comments.add(commit.uri)
            thread = threads.get(commit.uri)
            root = commit.row.root_uri if commit.row is not None else thread and thread[0]
            if root:
                posts.add(root)
        elif collection in (ev.PROFILE, ev.ACTOR_PROFILE):
            actors.add(commit.did)
    return Changed.of(
        repos=repos,
        identities=out.identity_changed,
        posts=posts,
        comments=comments,
        actors=actors,
    )


# Collections whose rows are keyed by record URI and carry the rev that wrote them.
ROW_COLLECTIONS = frozenset(
    {ev.POST, ev.COMMENT, ev.VOTE, ev.SUBSCRIPTION, ev.BLOCK, ev.AUTHORIZATION, ev.ACTOR_BLOCK}
)


def _needs_state(commit: Commit, states: dict[tuple[str, str, str], str]) -> bool:
    """Whether a winning commit writes record_state: records stored per repo (no
    row of their own keyed by URI), deletes (their tombstone outlives a row that
    never came), and records that already have a record_state row (so a
    resurrected record is no longer reported deleted)."""
    return commit.collection not in ROW_COLLECTIONS or commit.op == "delete" or commit.key in states


def _comment_deltas(
    winners: list[Commit], threads: dict[str, tuple[str, str, bool]], touched: Touched
) -> None:
    """What each comment's change of liveness does to its root's comment_count and
    its parent's reply_count: stored state (``threads``, read before any write)
    against the state the batch leaves (its winner)."""
    for commit in winners:
        if commit.collection != ev.COMMENT:
            continue
        old = threads.get(commit.uri)
        if old is not None and old[2]:
            touched.add(old[0], 0, 0, -1)
            if _is_comment(old[1]):
                touched.add(old[1], 0, 0, -1)
        if commit.op != "delete":
            row: CommentRow = commit.row
            touched.add(row.root_uri, 0, 0, 1)
            if _is_comment(row.parent_uri):
                touched.add(row.parent_uri, 0, 0, 1)


def _community_post_deltas(
    winners: list[Commit], stored: dict[str, tuple[str, str, bool]], touched: Touched
) -> None:
    """A post becoming live only adds to its community's post_count and can only
    raise last_post_at; a live post deleted or edited (its ranked_at may move)
    needs the community recounted."""
    for commit in winners:
        if commit.collection != ev.POST:
            continue
        old = stored.get(commit.uri)
        was_live = old is not None and old[2]
        if was_live:
            touched.communities.add(commit.did)
        elif commit.op != "delete" and commit.uri not in touched.withheld:
            touched.new_posts.setdefault(commit.did, []).append(commit.uri)


def _delta_cols(deltas: dict[str, list[int]], recounted: set[str]) -> list[list[Any]]:
    """uri, up, down, children columns of the non-zero deltas of rows not recounted."""
    cols: list[list[Any]] = [[], [], [], []]
    for uri in sorted(deltas):
        delta = deltas[uri]
        if uri in recounted or not any(delta):
            continue
        cols[0].append(uri)
        for col, value in zip(cols[1:], delta, strict=True):
            col.append(value)
    return cols


def _referenced_dids(commit: Commit) -> tuple[str, ...]:
    row = commit.row
    if isinstance(row, PostRow):
        return (commit.did, row.author)
    if isinstance(row, SubjectRow):
        return (commit.did, row.community)
    if isinstance(row, AuthorizationRow):
        return (commit.did, row.aggregator)
    if isinstance(row, UserBlockRow):
        return (commit.did, row.subject)
    return (commit.did,)


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


def _initial_counts(
    commit: Commit, stored: Container[str], awaited: Container[str], deltas: dict[str, list[int]]
) -> list[int]:
    """[upvotes, downvotes, children] a post or comment is inserted with.

    A row new to the database that nothing referenced before it arrived
    (``awaited``) has exactly the counts this batch's decisions give it; they
    are taken out of ``deltas`` so they are not added again. Any other row is
    upserted without touching its counters (zeros here) and recounted."""
    if commit.uri in stored or commit.uri in awaited:
        return [0, 0, 0]
    return deltas.pop(commit.uri, None) or [0, 0, 0]


def _posts(
    conn: q.Conn,
    commits: list[Commit],
    stored: dict[str, tuple[str, str, bool]],
    awaited: set[str],
    touched: Touched,
    *,
    out: Decisions,
) -> None:
    if not commits:
        return
    for commit in commits:
        old = stored.get(commit.uri)
        if old is not None:
            touched.aggregators.add(old[1])
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    touched.posts.update(c.uri for c in live)
    q.delete_posts(conn, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    withheld: list[Commit] = []
    for commit in live:
        rules = touched.rules.get(commit.did)
        if rules is not None and rules.restrictive:
            embed = commit.row.embed
            if violation(rules, orjson.loads(embed) if embed else None) is not None:
                withheld.append(commit)
                touched.withheld.add(commit.uri)
                out.withheld.append((commit, WITHHELD_REASON))
    cols: list[list[Any]] = [[] for _ in range(18)]
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
            commit.rev,
            *_initial_counts(commit, stored, awaited, touched.post_deltas),
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_posts(conn, cols)
    q.withhold_posts(
        conn, [c.uri for c in withheld], [_at(c.time_us) for c in withheld], WITHHELD_REASON
    )


def _comments(
    conn: q.Conn,
    commits: list[Commit],
    threads: dict[str, tuple[str, str, bool]],
    awaited: set[str],
    touched: Touched,
) -> None:
    if not commits:
        return
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    touched.comments.update(c.uri for c in live)
    q.delete_comments(conn, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(20)]
    for commit in live:
        row: CommentRow = commit.row
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
            commit.rev,
            *_initial_counts(commit, threads, awaited, touched.comment_deltas),
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_comments(conn, cols)


def _votes(
    conn: q.Conn,
    commits: list[Commit],
    touched: Touched,
    live_before: list[tuple[str, str, str, str, bool, int]] | None,
) -> None:
    """Write votes and decide, per (voter, subject), the one effective vote.

    The decision is made here from the pairs' live rows plus the batch, so
    the database sees at most a clear of losers, the upsert carrying each
    new vote's flag, and a set of restored winners, in that order (the
    partial unique index forbids two effective votes even transiently).
    """
    if not commits:
        return
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    if live_before is None:
        pairs = sorted({(c.did, c.row.subject_uri) for c in live})
        live_before = q.live_votes(
            conn, sorted(c.uri for c in commits), [p[0] for p in pairs], [p[1] for p in pairs]
        )()
    # uri -> (pair, rev) of every live vote after this batch, and who is effective now
    state: dict[str, tuple[tuple[str, str], str]] = {}
    effective_now: dict[str, tuple[str, int]] = {}  # uri -> (subject, direction)
    directions: dict[str, int] = {}
    for uri, voter, subject, rev, effective, direction in live_before:
        state[uri] = ((voter, subject), rev)
        directions[uri] = direction
        if effective:
            effective_now[uri] = (subject, direction)
    for commit in deleted:
        state.pop(commit.uri, None)
    for commit in live:
        state[commit.uri] = ((commit.did, commit.row.subject_uri), commit.rev)
        directions[commit.uri] = commit.row.direction
    best: dict[tuple[str, str], tuple[str, str]] = {}
    for uri, (pair, rev) in state.items():
        if pair not in best or (rev, uri) > best[pair]:
            best[pair] = (rev, uri)
    winners = {uri for _rev, uri in best.values()}
    # Counters change by what stops being effective and what becomes effective
    # (a vote that stays effective but changes direction or subject does both).
    for subject, direction in effective_now.values():
        touched.add(subject, -(direction == 1), -(direction == -1), 0)
    for uri in winners:
        subject, direction = state[uri][0][1], directions[uri]
        touched.add(subject, int(direction == 1), int(direction == -1), 0)
    batch_uris = {c.uri for c in commits}

    q.set_effective(conn, sorted(effective_now.keys() - winners), effective=False)
    q.delete_votes(conn, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if live:
        cols: list[list[Any]] = [[] for _ in range(10)]
        for commit in live:
            row = commit.row
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
                commit.uri in winners,
            )
            for col, value in zip(cols, values, strict=True):
                col.append(value)
        q.upsert_votes(conn, cols)
    q.set_effective(conn, sorted(winners - effective_now.keys() - batch_uris), effective=True)


def _subjects(conn: q.Conn, table: str, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.soft_delete(conn, table, [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(8)]
    for commit in live:
        row: SubjectRow = commit.row
        touched.users.add(row.community)
        if table == "subscriptions":
            touched.subscribed.add(row.community)
        values = (
            commit.uri,
            commit.did,
            commit.rkey,
            row.community,
            row.content_visibility,
            commit.cid,
            row.created_at,
            commit.rev,
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
    )().values():
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
    cols: list[list[Any]] = [[] for _ in range(12)]
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
            commit.rev,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_authorizations(conn, cols)


def _actor_profiles(conn: q.Conn, commits: list[Commit], touched: Touched) -> None:
    for commit in commits:
        row: ActorProfileRow | None = commit.row if commit.op != "delete" else None
        touched.profiles[commit.did] = (
            commit.did,
            row.display_name if row else None,
            row.description if row else None,
            row.avatar if row else None,
            row.banner if row else None,
            row.created_at if row else None,
        )


def _user_blocks(conn: q.Conn, commits: list[Commit], touched: Touched) -> None:
    if not commits:
        return
    live = [c for c in commits if c.op != "delete"]
    deleted = [c for c in commits if c.op == "delete"]
    q.soft_delete(conn, "user_blocks", [c.uri for c in deleted], [_at(c.time_us) for c in deleted])
    if not live:
        return
    cols: list[list[Any]] = [[] for _ in range(7)]
    for commit in live:
        row: UserBlockRow = commit.row
        touched.users.add(row.subject)
        values = (
            commit.uri,
            commit.did,
            commit.rkey,
            row.subject,
            commit.cid,
            row.created_at or _at(commit.time_us),
            commit.rev,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    q.upsert_user_blocks(conn, cols)


def _identities(conn: q.Conn, identities: list[IdentityEvent], out: Decisions) -> None:
    """An identity event is a cue to re-verify, never the handle itself (see apply_identities)."""
    if not identities:
        return
    latest: dict[str, IdentityEvent] = {}
    for identity in identities:
        if identity.did not in latest or latest[identity.did].time_us < identity.time_us:
            latest[identity.did] = identity
    rows = list(latest.values())
    out.identity_changed.extend(
        q.apply_identities(conn, [r.did for r in rows], [r.time_us for r in rows])
    )
