"""Generate a realistic Jetstream capture for the ingestion benchmark.

Mix (by event count): 55% votes, 30% comments, 10% posts, 5% subscriptions,
over 1 000 communities (whose profile records open the stream) and a pool
of users. Revs and rkeys are real TIDs increasing per repo, DIDs look like
did:plc, CIDs like dag-cbor CIDv1s, and every record passes the lexicons.
A few percent of votes are re-votes (same voter and subject), some comments
reply to comments, and a small share of comments/posts are later edited or
deleted, as on a live network.

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


def generate(events: int, seed: int = 1, communities: int = 1000) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    clock = Stream(start_us=1_780_000_000_000_000)
    users = [did(f"bench-user-{i}") for i in range(max(200, events // 20))]
    community_dids = [did(f"bench-community-{i}") for i in range(communities)]
    posts: list[tuple[str, str]] = []  # (uri, community)
    comments_by_post: dict[str, list[str]] = {}
    all_comments: list[str] = []

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
            posts.append((uri(community, POST, key), community))
            yield clock.commit(community, POST, key, record, time_us=now)
        elif roll < 0.40:
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
            yield clock.commit(author, COMMENT, key, record, time_us=now)
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
            yield clock.commit(rnd.choice(users), VOTE, rkey(now), record, time_us=now)
        else:
            record = {
                "subject": rnd.choice(community_dids),
                "contentVisibility": rnd.randint(1, 5),
                "createdAt": _created(now),
            }
            yield clock.commit(rnd.choice(users), SUBSCRIPTION, rkey(now), record, time_us=now)


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
