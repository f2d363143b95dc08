"""What a change to the index makes stale, in the terms the caches drop by.

One vocabulary for the three parties: the indexer works it out for every
batch it applies (stream events and Coves' own writes alike, since a write
through Coves is indexed by the same indexer the moment the PDS accepts it),
the invalidation channel (coves/invalidation.py) carries it to every process,
and each in-process cache drops what it names (coves/read/services.py, the
response cache, the identity resolver). Each field is one kind of key:

- ``repos``: DIDs whose records were written, plus the authors of posts written
  into a community's repo. Responses cached per viewer are tagged with the
  viewer's DID (their timeline shows their own votes, subscriptions, posts).
- ``identities``: DIDs whose identity changed (``#identity``): resolver memory.
- ``posts``: post URIs whose view or thread changed (the post itself, a vote on
  it, a comment under it).
- ``comments``: comment URIs whose view changed (the comment, a vote on it, a
  reply to it): the thread builds that show them.
- ``actors``: DIDs shown differently now (a profile, a verified handle, an
  account's status, a community's profile or verification): every view that
  shows them as author or community, and community lookups.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields

REPO, IDENTITY, POST, COMMENT, ACTOR = "repo", "identity", "post", "comment", "actor"
# Where a component that changes what views show reports it (Invalidation.changed).
OnChanged = Callable[["Changed"], Awaitable[None]]

# Field name by wire kind (the kinds are what travels on the channel).
KINDS = {REPO: "repos", IDENTITY: "identities", POST: "posts", COMMENT: "comments", ACTOR: "actors"}


@dataclass(frozen=True)
class Changed:
    repos: frozenset[str] = field(default_factory=frozenset)
    identities: frozenset[str] = field(default_factory=frozenset)
    posts: frozenset[str] = field(default_factory=frozenset)
    comments: frozenset[str] = field(default_factory=frozenset)
    actors: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        *,
        repos: Iterable[str] = (),
        identities: Iterable[str] = (),
        posts: Iterable[str] = (),
        comments: Iterable[str] = (),
        actors: Iterable[str] = (),
    ) -> Changed:
        return cls(
            frozenset(repos),
            frozenset(identities),
            frozenset(posts),
            frozenset(comments),
            frozenset(actors),
        )

    @classmethod
    def one(cls, kind: str, keys: Iterable[str]) -> Changed:
        """The change of one wire kind (``KeyError`` for a kind this version does not know)."""
        return cls.of(**{KINDS[kind]: keys})

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __or__(self, other: Changed) -> Changed:
        return Changed(
            **{f.name: getattr(self, f.name) | getattr(other, f.name) for f in fields(self)}
        )

    def by_kind(self) -> Iterator[tuple[str, list[str]]]:
        """(wire kind, sorted keys) of every non-empty field."""
        for kind, name in KINDS.items():
            keys = getattr(self, name)
            if keys:
                yield kind, sorted(keys)

    @property
    def shown(self) -> bool:
        """Whether any built view (post, thread, community lookup) may be stale."""
        return bool(self.posts or self.comments or self.actors)
