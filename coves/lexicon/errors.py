"""Errors raised by the lexicon package.

Validation failures carry the path of the offending field so that a dead
letter or a 400 response says *where* a record went wrong, not just that it
did. Schema errors are raised at load time: a broken lexicon file is a
deployment bug and must stop start-up rather than reject traffic later.
"""

from __future__ import annotations

ROOT_PATH = "$"
SHOWN_CHARS = 64


def shown(value: object) -> str:
    """A rejected value quoted for a message, cut short: messages echo untrusted input."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


class LexiconValidationError(ValueError):
    """A value does not match its lexicon; ``path`` names the field (``embed.images[2].alt``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path or ROOT_PATH
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class LexiconSchemaError(Exception):
    """A lexicon file is malformed, has the wrong id, or refers to a missing definition."""


class _Invalid(Exception):
    """Internal failure signal; the path is collected innermost-first while unwinding.

    Building a path string on every field of every valid record would cost
    more than the checks themselves, so validators only pay for paths when a
    value is actually rejected.
    """

    __slots__ = ("message", "segments")

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str | int] = []

    def path(self) -> str:
        out = ""
        for segment in reversed(self.segments):
            if isinstance(segment, int):
                out += f"[{segment}]"
            elif out:
                out += "." + segment
            else:
                out = segment
        return out

    def to_error(self) -> LexiconValidationError:
        return LexiconValidationError(self.path(), self.message)
