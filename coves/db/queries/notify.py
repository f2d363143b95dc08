"""Publishing on a PostgreSQL notification channel (listening: coves/db/listen.py)."""

from __future__ import annotations

from collections.abc import Sequence

from coves.db import Database

# PostgreSQL refuses payloads of 8000 bytes or more; stay well below.
MAX_PAYLOAD_BYTES = 7000


async def notify(db: Database, channel: str, payloads: Sequence[str]) -> None:
    """Send every payload on ``channel``, in order, in one statement.

    Notifications are delivered to listeners when the statement's transaction
    commits (here at once: autocommit), in the order sent.
    """
    if not payloads:
        return
    await db.execute(
        "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) WITH ORDINALITY AS x(p, n) ORDER BY n",
        (channel, list(payloads)),
    )
