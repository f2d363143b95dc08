"""Keyset cursors on ``(timestamp, uri)``: newest-first lists that new rows cannot disturb."""

from __future__ import annotations

from datetime import UTC, datetime

from coves.cursors import CursorCodec, invalid_cursor


def decode(codec: CursorCodec, kind: str, cursor: str) -> tuple[datetime, str]:
    """The position a cursor of ``kind`` names; 400 ``InvalidCursor`` for anything else."""
    payload = codec.decode(kind, cursor)
    at, uri = payload.get("t"), payload.get("u")
    if not isinstance(at, str) or not isinstance(uri, str):
        raise invalid_cursor()
    try:
        return datetime.fromisoformat(at), uri
    except ValueError:
        raise invalid_cursor() from None


def encode(codec: CursorCodec, kind: str, at: datetime, uri: str) -> str:
    return codec.encode(kind, {"t": at.astimezone(UTC).isoformat(), "u": uri})
