"""String measures used by lexicon limits: UTF-8 bytes and grapheme clusters.

Both are needed on every text field of every ingested record, so each has a
cheap bound that settles the common case without encoding or segmenting:
a code point is 1–4 UTF-8 bytes, and a grapheme cluster holds at least one
code point. ASCII text is segmented by hand (only CR LF joins two ASCII
characters into one cluster); everything else goes to the ``grapheme``
package.
"""

from __future__ import annotations

import grapheme


def utf8_length(value: str) -> int:
    if value.isascii():
        return len(value)
    return len(value.encode("utf-8", "surrogatepass"))


def grapheme_length(value: str, until: int | None = None) -> int:
    """Number of extended grapheme clusters; stops counting past ``until`` when given."""
    if value.isascii():
        return len(value) - value.count("\r\n")
    return int(grapheme.length(value, until))


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
        count = grapheme_length(value, maximum + 1)
        if count > maximum:
            return f"must be at most {maximum} graphemes"
    if minimum is not None:
        if n < minimum:
            return f"must be at least {minimum} graphemes"
        if grapheme_length(value, minimum) < minimum:
            return f"must be at least {minimum} graphemes"
    return None
