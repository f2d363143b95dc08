"""The application context: the long-lived objects the API and the children share.

Built once at start-up by :func:`build_context` (or by a test fixture calling
the constructor with the parts it needs) and never changed afterwards: the
dataclass is frozen, every field is typed, and nothing is attached to it while
requests run. It sits below the HTTP layer: handlers reach it as ``req.ctx``,
read services and supervised children take the fields they use from it, and
nothing here imports ``coves.xrpc``. HTTP policy that only the dispatcher uses
(rate limits, CORS) stays with the app (``coves.xrpc.app.create_app``).

Adding a capability: give it a typed field here (with a default when tests
build contexts without it) and construct it in :func:`build_context`; a
supervised child gets the fields it uses passed explicitly in
``nurseries.main.capability_children``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from coves.aggregators.api_keys import ApiKeys
from coves.aggregators.authorizations import AggregatorAuthorizations
from coves.aggregators.registration import AggregatorRegistrar
from coves.auth.base import Authenticator, NoCredentialsAccepted
from coves.config import Settings
from coves.db import Database
from coves.hosting import CommunityHosting, build_hosting
from coves.identity.hosted_by import HostedByQueue
from coves.identity.resolver import IdentityResolver
from coves.instance import InstanceKey
from coves.invalidation import Invalidation
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.oauth.service import OAuthService
from coves.pds.services import PdsServices
from coves.posting.service import PostService
from coves.read.services import ReadServices
from coves.respcache import ResponseCache
from coves.writes.repo import UserRepos, build_user_repos

# What the posting service reads its limits from (test registries may lack them).
POSTING_LEXICONS = (
    "social.coves.community.post",
    "social.coves.embed.images",
    "social.coves.embed.external",
)


class HealthSource(Protocol):
    """What ``_health`` needs from the supervisor."""

    @property
    def healthy(self) -> bool: ...

    def health_report(self) -> Mapping[str, object]: ...


@dataclass(frozen=True, eq=False)
class AppContext:
    settings: Settings
    db: Database
    metrics: Metrics = field(default_factory=Metrics)
    authenticator: Authenticator = field(default_factory=NoCredentialsAccepted)
    # Parameters and bodies are decoded and validated from these when loaded.
    lexicons: LexiconRegistry | None = None
    identity: IdentityResolver | None = None
    # The indexer's side of the did:web verifier (offers foreign communities).
    didweb: HostedByQueue | None = None
    health: HealthSource | None = None
    # Anonymous and per-viewer read responses; the indexer drops a repo's entries.
    response_cache: ResponseCache = field(default_factory=ResponseCache)
    # How PDS calls reach the network; tests pass their own (fault injection, hooks).
    pds_transport: httpx.AsyncBaseTransport | None = None
    # Or a whole PdsServices (its writer's indexer then belongs to whoever built it).
    pds_services: PdsServices | None = None
    # Sign-in through Coves and users' OAuth sessions (writes into their repos).
    oauth: OAuthService | None = None
    # Aggregators: domain-proof registration and API keys (coves.aggregators).
    aggregators: AggregatorRegistrar | None = None
    api_keys: ApiKeys | None = None
    authorizations: AggregatorAuthorizations | None = None
    # Writing posts (coves.posting) with the hosted communities' credentials; built
    # from the rest when not given (and lexicons are loaded).
    posts: PostService | None = None
    # Derived from settings and db when the context is made (see __post_init__).
    read: ReadServices = field(init=False)
    instance_key: InstanceKey = field(init=False)
    # Drops cached views here and, through PostgreSQL, in every other process.
    invalidation: Invalidation = field(init=False)
    pds: PdsServices = field(init=False)
    hosting: CommunityHosting = field(init=False)  # communities hosted on PDS_URL
    # Signed-in users' own repositories, written through their OAuth sessions.
    user_repos: UserRepos | None = field(init=False)

    def __post_init__(self) -> None:
        # Frozen: the derived parts are set once, here, and never again.
        object.__setattr__(self, "read", ReadServices.build(self.settings, self.db))
        object.__setattr__(self, "instance_key", InstanceKey(self.settings, self.db))
        object.__setattr__(
            self,
            "invalidation",
            Invalidation.on_database(self.db, self.response_cache, self.identity, views=self.read),
        )
        # After the invalidation: writes are indexed with its hooks.
        object.__setattr__(self, "pds", self.pds_services or default_pds_services(self))
        object.__setattr__(
            self,
            "hosting",
            build_hosting(
                self.settings, self.db, self.pds, metrics=self.metrics, validator=self.lexicons
            ),
        )
        repos = None
        if self.oauth is not None:
            repos = build_user_repos(self.settings, self.metrics, self.oauth, self.pds.writer)
        object.__setattr__(self, "user_repos", repos)
        if self.api_keys is None:
            object.__setattr__(self, "api_keys", ApiKeys(self.db))
        if self.aggregators is None and self.identity is not None:
            from coves.posting.build import outbound_fetcher

            registrar = AggregatorRegistrar(self.db, outbound_fetcher(self.settings), self.identity)
            object.__setattr__(self, "aggregators", registrar)
        if (
            self.lexicons is not None
            and all(self.lexicons.has(nsid) for nsid in POSTING_LEXICONS)
            and (self.posts is None or self.authorizations is None)
        ):
            self._default_posting(self.lexicons)

    def _default_posting(self, lexicons: LexiconRegistry) -> None:
        """Posting and aggregator authorizations write with the hosted communities'
        sessions (tests may pass their own services instead)."""
        from coves.aggregators.authorizations import AggregatorAuthorizations
        from coves.posting.build import build_post_service, outbound_fetcher
        from coves.posting.pds_repo import HostedCredentials, PdsCommunityRepo

        repo = PdsCommunityRepo(self.pds, HostedCredentials(self.hosting.sessions))
        if self.posts is None:
            posts = build_post_service(
                settings=self.settings,
                db=self.db,
                read=self.read,
                lexicons=lexicons,
                repo=repo,
                fetcher=outbound_fetcher(self.settings),
                identity=self.identity,
                metrics=self.metrics,
            )
            object.__setattr__(self, "posts", posts)
        if self.authorizations is None:
            object.__setattr__(
                self, "authorizations", AggregatorAuthorizations(self.db, self.read, repo)
            )


def default_pds_services(ctx: AppContext) -> PdsServices:
    """One connection pool; writes indexed by the same indexer the stream uses."""
    from coves.ingest.build import production_indexer
    from coves.pds.client import PdsConnections
    from coves.pds.writes import RepoWriter

    return PdsServices(
        connections=PdsConnections(metrics=ctx.metrics, transport=ctx.pds_transport),
        writer=RepoWriter(production_indexer(ctx)),
        instance_url=ctx.settings.pds_url,
    )


def build_context(
    settings: Settings,
    db: Database,
    *,
    metrics: Metrics | None = None,
    health: HealthSource | None = None,
    fetcher: SafeFetcher | None = None,
    outbound: SafeFetcher | None = None,
) -> AppContext:
    """The production context: lexicons, identity resolution, authentication, did:web queue.

    ``fetcher`` (DID documents, OAuth metadata) and ``outbound`` (the aggregator
    registrar's domain checks) replace those fetchers: tests pass offline ones and
    get the rest exactly as production builds it."""
    from coves.auth.factory import build_authenticator
    from coves.identity.factory import build_fetcher, build_resolver
    from coves.oauth.service import build_oauth_service
    from coves.posting.build import outbound_fetcher

    metrics = metrics if metrics is not None else Metrics()
    fetcher = fetcher if fetcher is not None else build_fetcher(settings)
    identity = build_resolver(settings, db, fetcher, metrics=metrics)
    oauth = build_oauth_service(settings, db, fetcher, identity)
    api_keys = ApiKeys(db)
    return AppContext(
        settings=settings,
        db=db,
        metrics=metrics,
        health=health,
        lexicons=LexiconRegistry.load(),
        identity=identity,
        authenticator=build_authenticator(
            settings, identity, fetcher, sessions=oauth.verifier, api_keys=api_keys, db=db
        ),
        didweb=HostedByQueue(),
        oauth=oauth,
        aggregators=AggregatorRegistrar(db, outbound or outbound_fetcher(settings), identity),
        api_keys=api_keys,
    )
