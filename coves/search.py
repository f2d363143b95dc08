"""Trigram extraction compatible with PostgreSQL's pg_trgm.

The embedded PostgreSQL has no pg_trgm, so community search stores the
trigram set in ``communities.search_trigrams`` (GIN-indexed) and compares
sets itself. Producing exactly pg_trgm's trigrams keeps the door open to
switching to the extension later without reindexing semantics changing.
"""

from __future__ import annotations

import re

# pg_trgm word characters: letters and digits (Unicode-aware), not "_".
_WORD = re.compile(r"[^\W_]+")


def trigrams(text: str) -> list[str]:
    """Sorted distinct trigrams of ``text``: each word padded ``"  word "``."""
    found: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        for i in range(len(padded) - 2):
            found.add(padded[i : i + 3])
    return sorted(found)


def similarity(a: list[str] | set[str], b: list[str] | set[str]) -> float:
    """pg_trgm's similarity: |A ∩ B| / |A ∪ B| (0 when both are empty)."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0
