"""Community search helpers shared by the indexer and the read API.

The embedded PostgreSQL ships without ``pg_trgm``, so the indexer stores each
community's trigrams in a ``text[]`` column with a GIN index and the search
endpoint matches query trigrams against it with ``&&`` / ``@>``. Extraction
follows pg_trgm's rules so results match what ``similarity()`` would see.
"""

from __future__ import annotations

import re

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def trigrams(text: str) -> list[str]:
    """pg_trgm-compatible trigrams of ``text``, sorted and de-duplicated.

    Lowercase, split into words of alphanumerics, pad each word with two
    spaces before and one after, take every three-character window.
    """
    out: set[str] = set()
    for word in _WORD_RE.findall(text.lower()):
        padded = f"  {word} "
        for i in range(len(padded) - 2):
            out.add(padded[i : i + 3])
    return sorted(out)
