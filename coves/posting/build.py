"""Assembling the posting service from settings (the one place that maps them)."""

from __future__ import annotations

from collections.abc import Sequence

from coves.config import Settings
from coves.db import Database
from coves.identity.resolver import IdentityResolver
from coves.lexicon.registry import LexiconRegistry
from coves.media.images import blob_limits
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.posting.embeds import CardLimits, EmbedPreparer, text_limit
from coves.posting.repo import CommunityRepo
from coves.posting.service import PostingLimits, PostService
from coves.read.services import ReadServices
from coves.unfurl.providers import DEFAULT_OEMBED, OEmbedProvider
from coves.unfurl.service import Unfurler


def card_limits(lexicons: LexiconRegistry) -> CardLimits:
    """Link-card field limits, from the external embed's lexicon."""
    external = lexicons.document("social.coves.embed.external")
    return CardLimits(
        title=text_limit(external, "external", "title"),
        description=text_limit(external, "external", "description"),
        thumb=blob_limits(external, "external", "thumb"),
    )


def outbound_fetcher(settings: Settings) -> SafeFetcher:
    """The fetcher for URLs users and aggregators name (pages, images, domains).

    Unlike the identity fetcher it trusts no host: the PLC directory an operator
    configured may be internal, and a link must not reach it."""
    return SafeFetcher(allow_private=settings.allow_private_network_fetch)


def build_post_service(
    *,
    settings: Settings,
    db: Database,
    read: ReadServices,
    lexicons: LexiconRegistry,
    repo: CommunityRepo,
    fetcher: SafeFetcher,
    identity: IdentityResolver | None,
    metrics: Metrics,
    oembed: Sequence[OEmbedProvider] = DEFAULT_OEMBED,
) -> PostService:
    timeout = settings.unfurl_timeout_seconds
    unfurler = Unfurler(fetcher, db=db, metrics=metrics, oembed=oembed, timeout=timeout)
    return PostService(
        db=db,
        read=read,
        lexicons=lexicons,
        repo=repo,
        embeds=EmbedPreparer(unfurler, identity, card_limits(lexicons), timeout),
        limits=PostingLimits(settings.posts_per_hour, settings.aggregator_posts_per_hour),
        metrics=metrics,
    )
