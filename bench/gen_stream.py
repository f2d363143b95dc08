"""Generate a realistic Jetstream capture for the ingestion benchmark.

Mix (by event count): 55% votes, 28% comments, 10% posts, 5% subscriptions,
2% edits (``update`` of an earlier post or comment) and 1% deletes (of an
earlier post, comment or vote), over 1 000 communities (whose profile
records open the stream) and a pool of users. Revs and rkeys are real TIDs
increasing per repo, DIDs look like did:plc, CIDs like dag-cbor CIDv1s, and
every record passes the lexicons. A few percent of votes are re-votes (same
voter and subject), some comments reply to comments, and edits keep a
comment's reply references (they are immutable), as on a live network.

    .venv/bin/python bench/gen_stream.py OUT.jsonl[.zst] [--events 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.events import (
    COMMENT,
    POST,
    PROFILE,
    SUBSCRIPTION,
    VOTE,
    Stream,
    cid,
    did,
    tid,
    uri,
)

INSTANCE_DID = "did:web:coves.bench"
WORDS = [
    "the",
    "a",
    "community",
    "post",
    "thread",
    "rust",
    "python",
    "trio",
    "postgres",
    "garden",
    "cats",
    "bikes",
    "music",
    "film",
    "climate",
    "science",
    "local",
    "news",
    "open",
    "source",
    "privacy",
    "games",
    "retro",
    "keyboard",
    "coffee",
    "tea",
]


def _text(rnd: random.Random, words: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(words))


def _created(time_us: int) -> str:
    seconds, micros = divmod(time_us, 1_000_000)
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{micros // 1000:03d}Z"


def generate(
    events: int, seed: int = 1, communities: int = 1000, start_us: int = 1_780_000_000_000_000
) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    clock = Stream(start_us=start_us)
    users = [did(f"bench-user-{i}") for i in range(max(200, events // 20))]
    community_dids = [did(f"bench-community-{i}") for i in range(communities)]
    posts: list[tuple[str, str]] = []  # (uri, community)
    post_records: dict[str, tuple[str, str, dict[str, Any]]] = {}  # uri -> (repo, rkey, record)
    comments_by_post: dict[str, list[str]] = {}
    all_comments: list[str] = []
    comment_records: dict[str, tuple[str, str, dict[str, Any]]] = {}
    votes: list[tuple[str, str]] = []  # (voter, rkey), for un-votes

    def rkey(now: int) -> str:
        return tid(now, rnd.randrange(1024))

    for i, community in enumerate(community_dids):
        now = clock.tick()
        record = {
            "name": f"c{i}",
            "displayName": f"Community {i} {_text(rnd, 2)}",
            "description": _text(rnd, 12),
            "hostedBy": INSTANCE_DID,
            "createdBy": rnd.choice(users),
            "visibility": "public",
            "federation": {"allowExternalDiscovery": True},
            "createdAt": _created(now),
        }
        yield clock.commit(community, PROFILE, "self", record, time_us=now)

    remaining = events - communities
    for _ in range(remaining):
        now = clock.tick()
        roll = rnd.random()
        if roll < 0.10 or not posts:
            community = rnd.choice(community_dids)
            key = rkey(now)
            record = {
                "community": community,
                "author": rnd.choice(users),
                "title": _text(rnd, 8),
                "content": _text(rnd, 40),
                "langs": ["en"],
                "createdAt": _created(now),
            }
            post_uri = uri(community, POST, key)
            posts.append((post_uri, community))
            post_records[post_uri] = (community, key, record)
            yield clock.commit(community, POST, key, record, time_us=now)
        elif roll < 0.38:
            post_uri, _community = posts[-1 - min(len(posts) - 1, int(rnd.expovariate(1 / 200)))]
            siblings = comments_by_post.setdefault(post_uri, [])
            parent = rnd.choice(siblings) if siblings and rnd.random() < 0.4 else post_uri
            author = rnd.choice(users)
            key = rkey(now)
            record = {
                "reply": {
                    "root": {"uri": post_uri, "cid": cid(post_uri)},
                    "parent": {"uri": parent, "cid": cid(parent)},
                },
                "content": _text(rnd, 25),
                "langs": ["en"],
                "createdAt": _created(now),
            }
            comment_uri = uri(author, COMMENT, key)
            siblings.append(comment_uri)
            all_comments.append(comment_uri)
            comment_records[comment_uri] = (author, key, record)
            yield clock.commit(author, COMMENT, key, record, time_us=now)
        elif roll < 0.40 and (post_records or comment_records):
            yield _edit(rnd, clock, now, posts, post_records, all_comments, comment_records)
        elif roll < 0.41:
            yield _delete(
                rnd, clock, now, posts, post_records, all_comments, comment_records, votes
            )
        elif roll < 0.95:
            if all_comments and rnd.random() < 0.3:
                subject = all_comments[
                    -1 - min(len(all_comments) - 1, int(rnd.expovariate(1 / 500)))
                ]
            else:
                subject = posts[-1 - min(len(posts) - 1, int(rnd.expovariate(1 / 200)))][0]
            record = {
                "subject": {"uri": subject, "cid": cid(subject)},
                "direction": "up" if rnd.random() < 0.8 else "down",
                "createdAt": _created(now),
            }
            voter, key = rnd.choice(users), rkey(now)
            votes.append((voter, key))
            yield clock.commit(voter, VOTE, key, record, time_us=now)
        else:
            record = {
                "subject": rnd.choice(community_dids),
                "contentVisibility": rnd.randint(1, 5),
                "createdAt": _created(now),
            }
            yield clock.commit(rnd.choice(users), SUBSCRIPTION, rkey(now), record, time_us=now)


def _recent(rnd: random.Random, keys: list[str], live: dict[str, Any]) -> str | None:
    """A mostly recent item still in ``live`` (edits and deletes follow creation closely
    on a live network), or None after a few misses on deleted ones."""
    for _ in range(8):
        key = keys[-1 - min(len(keys) - 1, int(rnd.expovariate(1 / 100)))]
        if key in live:
            return key
    return None


def _edit(
    rnd: random.Random,
    clock: Stream,
    now: int,
    posts: list[tuple[str, str]],
    post_records: dict[str, tuple[str, str, dict[str, Any]]],
    all_comments: list[str],
    comment_records: dict[str, tuple[str, str, dict[str, Any]]],
) -> dict[str, Any]:
    """An ``update`` of an earlier comment (new text; reply refs are immutable) or post."""
    comment = _recent(rnd, all_comments, comment_records) if all_comments else None
    post = _recent(rnd, [p[0] for p in posts[-200:]], post_records)
    if comment is not None and (post is None or rnd.random() < 0.6):
        repo, key, old = comment_records[comment]
        record = {**old, "content": _text(rnd, 25) + " (edited)"}
        comment_records[comment] = (repo, key, record)
        return clock.commit(repo, COMMENT, key, record, operation="update", time_us=now)
    target = post if post is not None else next(reversed(post_records))
    repo, key, old = post_records[target]
    record = {**old, "title": _text(rnd, 8), "content": _text(rnd, 40) + " (edited)"}
    post_records[target] = (repo, key, record)
    return clock.commit(repo, POST, key, record, operation="update", time_us=now)


def _delete(
    rnd: random.Random,
    clock: Stream,
    now: int,
    posts: list[tuple[str, str]],
    post_records: dict[str, tuple[str, str, dict[str, Any]]],
    all_comments: list[str],
    comment_records: dict[str, tuple[str, str, dict[str, Any]]],
    votes: list[tuple[str, str]],
) -> dict[str, Any]:
    """A ``delete`` of an earlier vote (un-vote), comment or post. Deleted posts and
    comments stay targets of later votes and replies, as they do on the network."""
    roll = rnd.random()
    if votes and roll < 0.5:
        voter, key = votes.pop(rnd.randrange(len(votes)))
        return clock.delete(voter, VOTE, key, time_us=now)
    target = _recent(rnd, all_comments, comment_records) if all_comments else None
    if target is not None and roll < 0.85:
        repo, key, _record = comment_records.pop(target)
        return clock.delete(repo, COMMENT, key, time_us=now)
    post = _recent(rnd, [p[0] for p in posts[-200:]], post_records)
    if post is None:  # every recent post already deleted: un-vote instead
        voter, key = votes.pop() if votes else (rnd.choice(posts)[1], tid(now))
        return clock.delete(voter, VOTE, key, time_us=now)
    repo, key, _record = post_records.pop(post)
    return clock.delete(repo, POST, key, time_us=now)


def write(path: Path, events: int, seed: int = 1) -> int:
    lines = (orjson.dumps(e) + b"\n" for e in generate(events, seed))
    count = 0
    if path.suffix == ".zst":
        import zstandard

        with path.open("wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as out:
            for line in lines:
                out.write(line)
                count += 1
    else:
        with path.open("wb") as out:
            for line in lines:
                out.write(line)
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    count = write(args.out, args.events, args.seed)
    print(f"wrote {count:,} events to {args.out}")


if __name__ == "__main__":
    main()
