"""String measures used by lexicon limits: UTF-8 bytes and grapheme clusters.

Both are needed on every text field of every ingested record, so each has a
cheap bound that settles the common case without encoding or segmenting:
a code point is 1–4 UTF-8 bytes, and a grapheme cluster holds at least one
code point. Segmentation is needed only where a code point can join its
neighbour: CR LF, or one of the break classes that rule out a boundary
(Extend, ZWJ, SpacingMark, Prepend, Regional_Indicator, Hangul L/V/T). Text
without those (ASCII, most Latin, CJK, Cyrillic, lone emoji) has one cluster
per code point. The rest is segmented by mapping each code point to a
letter for its break class (one ``str.translate``) and counting matches of
a regular expression equivalent to the ``grapheme`` package's state
machine, which runs in C: tens of nanoseconds per character instead of
the package's microseconds. The package remains the reference (and the
fallback should its table be missing); tests check the two agree.
"""

from __future__ import annotations

import json
import re
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


# One letter per grapheme-break class; "o" is Other.
CLASS_LETTERS = {
    "Prepend": "p",
    "CR": "r",
    "LF": "n",
    "Control": "c",
    "Extend": "e",
    "Regional_Indicator": "i",
    "SpacingMark": "s",
    "L": "L",
    "V": "V",
    "T": "T",
    "LV": "v",
    "LVT": "t",
    "ZWJ": "z",
    "Extended_Pictographic": "x",
}
MAX_CODE_POINT = 0x10FFFF


def _class_table() -> str | None:
    """A string indexed by code point giving its class letter: a ``str.translate`` table."""
    table = Path(grapheme.__file__).parent / "data" / "grapheme_break_property.json"
    try:
        data = json.loads(table.read_text(encoding="utf-8"))
        letters = bytearray(b"o" * (MAX_CODE_POINT + 1))
        for name, letter in CLASS_LETTERS.items():
            code = ord(letter)
            entry = data[name]
            for point in entry["single_chars"]:
                letters[int(point)] = code
            for low, high in entry["ranges"]:
                letters[int(low) : int(high) + 1] = bytes([code]) * (int(high) - int(low) + 1)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return letters.decode("ascii")


CLASS_TABLE = _class_table()

# One cluster, over class letters, mirroring grapheme.finder.FSM state by state:
# default (marks extend), CR LF, controls alone, Prepend prefixes, emoji ZWJ
# sequences, regional-indicator pairs and Hangul syllable sequences.
_MARKS = "[esz]*"
_CORE = (
    rf"x(?:e|zx)*(?:[zs]{_MARKS})?"
    rf"|ii?{_MARKS}"
    rf"|L+(?:[Vv]V*T*|tT*)?{_MARKS}"
    rf"|[Vv]V*T*{_MARKS}"
    rf"|[Tt]T*{_MARKS}"
    rf"|[oesz]{_MARKS}"
)
# The package's FSM leaves a Control or LF that follows a Prepend in the
# default state, so marks after it join it; the lookbehind keeps that quirk.
CLUSTER_RE = re.compile(rf"rn?|(?<=p)[nc]{_MARKS}|[nc]|p+(?:{_CORE})?|{_CORE}")


def count_clusters(value: str) -> int:
    """Exact grapheme cluster count (same rules as the ``grapheme`` package)."""
    if CLASS_TABLE is None:
        return int(grapheme.length(value))
    return CLUSTER_RE.subn("", value.translate(CLASS_TABLE))[1]


def utf8_length(value: str) -> int:
    if value.isascii():
        return len(value)
    return len(value.encode("utf-8", "surrogatepass"))


def grapheme_length(value: str, until: int | None = None) -> int:
    """Number of extended grapheme clusters; the slow fallback stops past ``until``."""
    if value.isascii() or (JOINERS is not None and JOINERS.isdisjoint(value)):
        return len(value) - value.count("\r\n")
    if CLASS_TABLE is not None:
        return count_clusters(value)
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
