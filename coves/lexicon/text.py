"""String measures used by lexicon limits: UTF-8 bytes and grapheme clusters.

Both are needed on every text field of every ingested record, so each has a
cheap bound that settles the common case without encoding or segmenting:
a code point is 1–4 UTF-8 bytes, and a grapheme cluster holds at least one
code point. Segmentation is needed only where a code point can join its
neighbour: CR LF, or one of the break classes that rule out a boundary
(Extend, ZWJ, SpacingMark, Prepend, Regional_Indicator, Hangul L/V/T). Text
without those (ASCII, most Latin, CJK, Cyrillic, lone emoji) has one cluster
per code point, so only the rest goes to the ``grapheme`` package, which
costs microseconds per character.
"""

from __future__ import annotations

import json
from pathlib import Path

import grapheme

# Classes whose code points can share a cluster with a neighbour.
JOINING_CLASSES = ("Prepend", "Extend", "SpacingMark", "ZWJ", "Regional_Indicator", "L", "V", "T")
# Joiners that can pull the *following* non-joiner into their cluster
# (Prepend ×, L × LV/LVT, ZWJ × Extended_Pictographic).
SWALLOWING_CLASSES = ("Prepend", "L", "ZWJ")


def _classes(names: tuple[str, ...]) -> frozenset[str] | None:
    """The code points of the named grapheme-break classes.

    Built from the ``grapheme`` package's own break-property table so both
    segment identically; if that table is not where we expect, every
    non-ASCII string takes the slow path. A set, not a regex character
    class: ``isdisjoint`` over a string runs at C speed, while ``re`` tests
    each character against hundreds of ranges.
    """
    table = Path(grapheme.__file__).parent / "data" / "grapheme_break_property.json"
    try:
        data = json.loads(table.read_text(encoding="utf-8"))
        chars: set[str] = set()
        for name in names:
            entry = data[name]
            chars.update(chr(int(code)) for code in entry["single_chars"])
            for low, high in entry["ranges"]:
                chars.update(chr(code) for code in range(int(low), int(high) + 1))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return frozenset(chars)


JOINERS = _classes(JOINING_CLASSES)
SWALLOWERS = _classes(SWALLOWING_CLASSES)
_DROP_JOINERS = dict.fromkeys(map(ord, JOINERS or ()))
_DROP_SWALLOWERS = dict.fromkeys(map(ord, SWALLOWERS or ()))


def utf8_length(value: str) -> int:
    if value.isascii():
        return len(value)
    return len(value.encode("utf-8", "surrogatepass"))


def grapheme_length(value: str, until: int | None = None) -> int:
    """Number of extended grapheme clusters; stops counting past ``until`` when given."""
    if value.isascii() or (JOINERS is not None and JOINERS.isdisjoint(value)):
        return len(value) - value.count("\r\n")
    return int(grapheme.length(value, until))


def grapheme_bounds(value: str) -> tuple[int, int]:
    """Cheap (lower, upper) bounds on the cluster count, exact when nothing joins.

    Every non-joiner starts a cluster except LF after CR and a code point
    pulled in by a preceding Prepend, L or ZWJ, so the lower bound is the
    non-joiners minus those. It settles most over-limit texts full of
    combining marks without segmenting them.
    """
    n = len(value)
    crlf = value.count("\r\n")
    if value.isascii():
        return n - crlf, n - crlf
    if JOINERS is None or SWALLOWERS is None:
        return 1 if n else 0, n - crlf
    if JOINERS.isdisjoint(value):
        return n - crlf, n - crlf
    non_joiners = len(value.translate(_DROP_JOINERS))
    swallowers = n - len(value.translate(_DROP_SWALLOWERS))
    return max(non_joiners - swallowers - crlf, 1), n - crlf


def bytes_within(value: str, minimum: int | None, maximum: int | None) -> str | None:
    """Check a UTF-8 byte length range; return a problem description or None."""
    n = len(value)
    if maximum is not None and n * 4 > maximum:
        size = n if value.isascii() else utf8_length(value)
        if size > maximum:
            return f"must be at most {maximum} bytes (UTF-8), got {size}"
    if minimum is not None and n < minimum:
        size = n if value.isascii() else utf8_length(value)
        if size < minimum:
            return f"must be at least {minimum} bytes (UTF-8), got {size}"
    return None


def graphemes_within(value: str, minimum: int | None, maximum: int | None) -> str | None:
    """Check a grapheme-count range; return a problem description or None."""
    n = len(value)
    if maximum is not None and n > maximum:
        low, high = grapheme_bounds(value)
        if low > maximum or (high > maximum and grapheme_length(value, maximum + 1) > maximum):
            return f"must be at most {maximum} graphemes"
    if minimum is not None:
        if n < minimum:
            return f"must be at least {minimum} graphemes"
        low, high = grapheme_bounds(value)
        if high < minimum or (low < minimum and grapheme_length(value, minimum) < minimum):
            return f"must be at least {minimum} graphemes"
    return None
