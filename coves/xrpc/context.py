"""The application context: the long-lived objects handlers use.

Built once at start-up (``coves.runtime``) or by a test fixture, and handed
to the app factory. Handlers reach everything through ``req.ctx``; nothing
is a module global, so tests can run several apps side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from coves.auth.base import Authenticator, NoCredentialsAccepted
from coves.config import Settings
from coves.db import Database
from coves.metrics import Metrics
from coves.ttlcache import TTLCache
from coves.xrpc.ratelimit import LimitClass, RateLimiter
from coves.xrpc.respcache import ResponseCache


class HealthSource(Protocol):
    """What ``_health`` needs from the supervisor."""

    @property
    def healthy(self) -> bool: ...

    def health_report(self) -> dict[str, Any]: ...


def default_limit_classes(settings: Settings) -> list[LimitClass]:
    return [
        LimitClass("general", settings.rate_limit_general, 60.0),
        LimitClass("comments", settings.rate_limit_comments, 60.0),
        # Aggregator classes: registration attempts per client; posts per
        # (aggregator, community) are counted from the database, not here.
        LimitClass("aggregator_register", 10, 600.0),
        # Sign-in routes, per client address: starting and finishing sign-ins
        # share one budget; refresh and logout have their own.
        LimitClass("oauth_login", 10, 60.0),
        LimitClass("oauth_refresh", 20, 60.0),
        LimitClass("oauth_logout", 10, 60.0),
    ]


# Staleness of a shared comment-thread build: counts and new comments show up within it;
# paging is unaffected because ranked pages read frozen snapshots.
COMMENT_THREAD_TTL_SECONDS = 2.0


@dataclass
class AppContext:
    settings: Settings
    db: Database
    metrics: Metrics = field(default_factory=Metrics)
    limiter: RateLimiter | None = None
    authenticator: Authenticator = field(default_factory=NoCredentialsAccepted)
    health: HealthSource | None = None
    # Filled in by later capabilities (lexicons, identity, views, ...).
    lexicons: Any = None
    instance_key: Any = None  # coves.atproto.keys.PrivateKey, loaded on first use
    read: Any = None  # coves.feeds.ReadServices, built on first use
    identity: Any = None  # coves.identity.IdentityResolver
    didweb: Any = None  # coves.identity.hosted_by.HostedByQueue (indexer's offer side)
    comment_threads: TTLCache[Any, Any] | None = None  # getComments: builds shared briefly
    response_cache: ResponseCache | None = None  # anonymous and per-viewer read responses
    oauth: Any = None  # coves.oauth.service.OAuthService: sign-in and users' sessions

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(default_limit_classes(self.settings))
        if self.comment_threads is None:
            # A popular thread is read by many clients at once and building it is the
            # expensive part: identical requests within two seconds share one build.
            self.comment_threads = TTLCache(COMMENT_THREAD_TTL_SECONDS, max_entries=128)
        if self.response_cache is None:
            self.response_cache = ResponseCache()
