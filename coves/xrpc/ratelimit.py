"""Rate limiting: named limit classes over a pluggable counter store.

Fixed windows per (class, client). The store is an interface: one process
alone counts in memory (:class:`MemoryStore`); the processes of a
deployment share their counts through PostgreSQL (:class:`SharedStore`).

Client identity is the TCP peer address. Forwarding headers are believed
only when the peer is a configured trusted proxy, and then we take the
right-most address that is not itself a trusted proxy: everything to the
left of it was written by the client and proves nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from coves.clock import monotonic, wall_now
from coves.config import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class LimitClass:
    name: str
    limit: int
    window: float  # seconds

    @property
    def policy(self) -> str:
        return f"{self.limit};w={int(self.window)}"


@dataclass(frozen=True)
class Decision:
    limit_class: LimitClass
    allowed: bool
    remaining: int
    reset_after: float  # seconds until the window resets

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_after))


class CounterStore(Protocol):
    """Count hits per key in fixed windows."""

    def hit(self, key: str, window: float, now: float) -> tuple[int, float]:
        """Record one hit; return (hits in current window, seconds until reset)."""
        ...


class MemoryStore:
    """In-process store; expired windows are swept as the clock moves."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)
        self._max_keys = max_keys
        self._next_sweep = 0.0

    def hit(self, key: str, window: float, now: float) -> tuple[int, float]:
        if now >= self._next_sweep or len(self._windows) >= self._max_keys:
            self._sweep(now)
            self._next_sweep = now + window
        end, count = self._windows.get(key, (0.0, 0))
        if now >= end:
            end, count = now + window, 0
        count += 1
        self._windows[key] = (end, count)
        return count, end - now

    def _sweep(self, now: float) -> None:
        for key in [k for k, (end, _) in self._windows.items() if end <= now]:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)


Push = Callable[
    [Sequence[str], Sequence[int], Sequence[int], Sequence[float]],
    Awaitable[list[tuple[str, int, int]]],
]


@dataclass(slots=True)
class _Window:
    window: float
    unsent: int = 0  # hits counted here since the last sync
    known: int = 0  # the shared total read back at the last sync


class SharedStore:
    """Counts across the processes of a deployment: locally, reconciled about once a second.

    The choice (docs/scaling.md): a round trip to PostgreSQL per request would
    cost more than most requests, and dividing the limit by the number of
    workers would give a client whose one keep-alive connection lands on one
    worker a fraction of its budget. So each process counts its own hits
    between syncs and adds them to a shared row per (key, window); the answer
    to each hit is the total last read back plus what this process counted
    since. Windows are aligned on the wall clock, so every process agrees on
    them. A client can exceed its limit by at most what it sends to the other
    processes within one sync interval; when the database is unreachable each
    process goes on counting alone and catches up once it answers again.
    """

    def __init__(self, *, clock: Callable[[], float] = wall_now, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[tuple[str, int], _Window] = {}  # by (key, window start)

    def hit(self, key: str, window: float, now: float) -> tuple[int, float]:
        wall = self._clock()
        start = int(wall // window * window)
        entry = self._windows.get((key, start))
        if entry is None:
            if len(self._windows) >= self._max_keys:
                self._expire(wall)
            entry = self._windows[(key, start)] = _Window(window)
        entry.unsent += 1
        return entry.unsent + entry.known, start + window - wall

    async def sync(self, push: Push) -> int:
        """Push the hits counted since the last sync; learn the totals. Returns windows synced."""
        wall = self._clock()
        self._expire(wall)
        pending = [(k, e, e.unsent) for k, e in self._windows.items() if e.unsent > 0]
        if not pending:
            return 0
        for _, entry, _ in pending:
            entry.unsent = 0
        try:
            totals = await push(
                [k[0] for k, _, _ in pending],
                [k[1] for k, _, _ in pending],
                [sent for _, _, sent in pending],
                [k[1] + e.window for k, e, _ in pending],
            )
        except BaseException:
            for _, entry, sent in pending:  # not counted anywhere yet: keep for next time
                entry.unsent += sent
            raise
        for key, start, hits in totals:
            known = self._windows.get((key, start))
            if known is not None:
                known.known = hits
        return len(pending)

    def _expire(self, wall: float) -> None:
        for k in [k for k, e in self._windows.items() if k[1] + e.window <= wall]:
            del self._windows[k]

    def __len__(self) -> int:
        return len(self._windows)


class RateLimiter:
    def __init__(
        self,
        classes: Sequence[LimitClass],
        store: CounterStore | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.classes = {c.name: c for c in classes}
        self.store: CounterStore = store if store is not None else MemoryStore()
        self._clock = clock

    def check(self, class_name: str, client: str) -> Decision:
        limit_class = self.classes[class_name]
        count, reset_after = self.store.hit(
            f"{class_name}:{client}", limit_class.window, self._clock()
        )
        return Decision(
            limit_class=limit_class,
            allowed=count <= limit_class.limit,
            remaining=max(0, limit_class.limit - count),
            reset_after=reset_after,
        )


def rate_limit_headers(decision: Decision, *, refused: bool) -> dict[str, str]:
    headers = {
        "RateLimit-Limit": str(decision.limit_class.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(int(wall_now() + decision.reset_after)),
        "RateLimit-Policy": decision.limit_class.policy,
    }
    if refused:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def client_address(
    peer: str | None,
    headers: Callable[[str], str | None],
    trusted: Sequence[Network],
) -> str:
    """The address to key limits on (never including the peer port)."""
    peer_ip = _parse_ip(peer)
    if peer_ip is None:
        return peer or "unknown"
    if not _is_trusted(peer_ip, trusted):
        return str(peer_ip)
    forwarded = headers("x-forwarded-for")
    if forwarded:
        closest = peer_ip  # the left-most address we can still believe
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            ip = _parse_ip(hop)
            if ip is None:
                break  # garbage: nothing from here leftwards can be believed
            if not _is_trusted(ip, trusted):
                return str(ip)
            closest = ip
        return str(closest)
    real_ip = _parse_ip(headers("x-real-ip"))
    if real_ip is not None:
        return str(real_ip)
    return str(peer_ip)


@functools.lru_cache(maxsize=4096)
def _parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Memoised: every request parses its peer address, and clients repeat.
    if not value:
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_trusted(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]
) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def default_limit_classes(settings: Settings) -> list[LimitClass]:
    return [
        LimitClass("general", settings.rate_limit_general, 60.0),
        LimitClass("comments", settings.rate_limit_comments, 60.0),
        LimitClass("search", settings.rate_limit_search, 60.0),
        # Aggregator classes: registration attempts per client; posts per
        # (aggregator, community) are counted from the database, not here.
        LimitClass("aggregator_register", 10, 600.0),
        # Image uploads per client: each may store up to 10 MB in a community's repo.
        LimitClass("uploads", 30, 60.0),
        # Sign-in routes, per client address: starting and finishing sign-ins
        # share one budget; refresh and logout have their own.
        LimitClass("oauth_login", 10, 60.0),
        LimitClass("oauth_refresh", 20, 60.0),
        LimitClass("oauth_logout", 10, 60.0),
        # Writes through Coves, per account (Endpoint.viewer_limits).
        LimitClass("user_writes", settings.rate_limit_user_writes, 60.0),
        LimitClass("user_reports", 10, 60.0),
        # Per aggregator API key (Viewer.limits), whichever address it comes from.
        LimitClass("api_key", settings.rate_limit_api_key, 60.0),
        # Account creation on the instance PDS, per client address.
        LimitClass("signup", 5, 3600.0),
    ]
