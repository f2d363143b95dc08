"""Hydrating what the rules need to know about the viewer, once per request.

``load`` asks for the relations of one page only (its private communities,
its authors, the posts and comments it shows): one statement for an
authenticated viewer, nothing at all for an anonymous one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from coves.db import Database, Row
from coves.db.queries import relations as relation_sql
from coves.read.rules import ANONYMOUS, Relations


@dataclass(frozen=True, slots=True)
class Vote:
    direction: int  # 1 or -1
    uri: str


@dataclass(frozen=True, slots=True)
class ViewerState:
    relations: Relations
    votes: dict[str, Vote] = field(default_factory=dict)  # by subject URI


NOBODY = ViewerState(ANONYMOUS)


async def load(
    db: Database,
    viewer: str | None,
    *,
    communities: Iterable[str] = (),
    actors: Iterable[str] = (),
    subjects: Iterable[str] = (),
) -> ViewerState:
    """The viewer's relations to ``communities`` (private ones: membership; community
    blocks are loaded whole) and ``actors`` (user blocks both ways), and their votes
    on ``subjects``."""
    if viewer is None:
        return NOBODY
    row = await relation_sql.relations(db, viewer, **asked(viewer, communities, actors, subjects))
    return from_row(viewer, row)


def asked(
    viewer: str, communities: Iterable[str], actors: Iterable[str], subjects: Iterable[str]
) -> dict[str, list[str]]:
    """What the relations statement is asked, deduplicated (the viewer is no author to
    block)."""
    return {
        "communities": sorted(set(communities)),
        "actors": sorted(set(actors) - {viewer}),
        "subjects": list(dict.fromkeys(subjects)),
    }


def from_row(viewer: str, row: Row) -> ViewerState:
    """The viewer's state from the relations statement's row."""
    relations = Relations(
        viewer=viewer,
        member_of=frozenset(row["member_of"]),
        blocked_communities=frozenset(row["blocked_communities"]),
        blocking=frozenset(row["blocking"]),
        blocked_by=frozenset(row["blocked_by"]),
    )
    votes = {subject: Vote(int(direction), uri) for subject, direction, uri in row["votes"]}
    return ViewerState(relations, votes)
