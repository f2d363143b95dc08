"""What we ask Jetstream for, and the cursor arithmetic around it.

Pure functions, no I/O: the consumer child (``nurseries/jetstream.py``)
composes them. Jetstream's v1 ``/subscribe`` takes a unix-microsecond
``time_us`` cursor; the server silently clamps a cursor older than its
replay window to the oldest event it still has, so the only way to notice
that events were lost is to compare the stored cursor with the clock here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Every collection the indexer understands. Identity and account events are
# not filtered by wantedCollections; the server always sends them.
COLLECTIONS: tuple[str, ...] = (
    "social.coves.community.profile",
    "social.coves.community.subscription",
    "social.coves.community.block",
    "social.coves.community.post",
    "social.coves.community.comment",
    "social.coves.feed.vote",
    "social.coves.actor.profile",
    "social.coves.actor.block",
    "social.coves.aggregator.service",
    "social.coves.aggregator.authorization",
)

# Jetstream keeps this much history (its --cursor-lookback default).
REPLAY_WINDOW_SECONDS = 36 * 3600.0
MAX_WANTED_COLLECTIONS = 100  # the server refuses more after dedupe

# Query parameters we own; anything else an operator put in JETSTREAM_URL is
# kept, except the lossy size cap, which we drop on purpose.
_OWNED_PARAMS = frozenset({"wantedCollections", "cursor", "maxMessageSizeBytes"})


def subscribe_url(
    base: str, collections: tuple[str, ...] = COLLECTIONS, cursor: int | None = None
) -> str:
    """The /subscribe URL for ``collections``, resuming at ``cursor`` (µs) if given.

    ``maxMessageSizeBytes`` is never sent: Jetstream skips oversize events
    silently, so a cap would turn large records into invisible gaps.
    """
    wanted = list(dict.fromkeys(collections))
    if not wanted:
        raise ValueError("at least one collection is required")
    if len(wanted) > MAX_WANTED_COLLECTIONS:
        raise ValueError(f"Jetstream accepts at most {MAX_WANTED_COLLECTIONS} collections")
    if cursor is not None and cursor < 0:
        raise ValueError("cursor must not be negative")
    parts = urlsplit(base)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError("the Jetstream URL must be an absolute ws:// or wss:// URL")
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _OWNED_PARAMS
    ]
    query = kept + [("wantedCollections", nsid) for nsid in wanted]
    if cursor is not None:
        query.append(("cursor", str(cursor)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def resume_cursor(stored_us: int | None, rewind_seconds: float) -> int | None:
    """Where to resume: a little before the last applied event.

    The rewind absorbs the small reorderings Jetstream allows around a
    reconnect; the indexer is idempotent, so re-delivered events are harmless.
    """
    if stored_us is None:
        return None
    return max(0, stored_us - round(rewind_seconds * 1_000_000))


@dataclass(frozen=True)
class Gap:
    """Events between ``cursor_us`` and the server's oldest event are gone for good."""

    cursor_us: int
    oldest_available_us: int

    @property
    def seconds(self) -> float:
        return (self.oldest_available_us - self.cursor_us) / 1_000_000


def detect_gap(
    cursor_us: int | None, now_us: int, window_seconds: float = REPLAY_WINDOW_SECONDS
) -> Gap | None:
    """A Gap when resuming at ``cursor_us`` falls outside the replay window."""
    if cursor_us is None:
        return None
    oldest = now_us - round(window_seconds * 1_000_000)
    if cursor_us >= oldest:
        return None
    return Gap(cursor_us, oldest)


SUBSCRIBE_REPOS = "/xrpc/com.atproto.sync.subscribeRepos"


def subscribe_repos_url(base: str, cursor: int | None = None) -> str:
    """The firehose URL of a PDS or relay, resuming after ``cursor`` (a ``seq``).

    ``base`` may be the host (``wss://pds.example``) or the full endpoint.
    Without a stored cursor a source starts at ``cursor=0``: the oldest event
    the server keeps (a PDS: everything; a relay: its backfill window), so an
    instance indexing its own PDS starts complete instead of live-only.
    """
    parts = urlsplit(base)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError("a firehose URL must be an absolute ws:// or wss:// URL")
    if cursor is not None and cursor < 0:
        raise ValueError("cursor must not be negative")
    path = parts.path.rstrip("/")
    if not path.endswith(SUBSCRIBE_REPOS):
        path += SUBSCRIBE_REPOS
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "cursor"]
    kept.append(("cursor", str(cursor if cursor is not None else 0)))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(kept), ""))


def source_name(url: str) -> str:
    """The cursor name of a firehose source: ``firehose:`` + host[:port] (+ path if any)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/").removesuffix(SUBSCRIBE_REPOS)
    return f"firehose:{netloc}{path}"
