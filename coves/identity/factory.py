"""Building the process-wide fetcher and resolver from Settings."""

from __future__ import annotations

import httpx

from coves.config import Settings
from coves.db import Database
from coves.identity.handle import TxtLookup, dns_txt_lookup
from coves.identity.resolver import IdentityResolver
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.net.addresses import HostResolver, system_resolve


def build_fetcher(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolve: HostResolver = system_resolve,
) -> SafeFetcher:
    return SafeFetcher(
        transport=transport,
        resolve=resolve,
        allow_private=settings.allow_private_network_fetch,
        # Operator-configured, may legitimately be internal: that host and port only
        # (the instance PDS too when it resolves development handles).
        trusted_origins=[settings.plc_url]
        + ([settings.pds_url] if settings.dev_handle_domains else []),
    )


def build_resolver(
    settings: Settings,
    db: Database | None,
    fetcher: SafeFetcher,
    *,
    txt_lookup: TxtLookup = dns_txt_lookup,
    metrics: Metrics | None = None,
) -> IdentityResolver:
    return IdentityResolver(
        fetcher=fetcher,
        plc_url=settings.plc_url,
        db=db,
        txt_lookup=txt_lookup,
        pds_handle_domains=settings.dev_handle_domains,
        pds_url=settings.pds_url,
        ttl=float(settings.identity_cache_ttl_seconds),
        negative_ttl=float(settings.identity_negative_ttl_seconds),
        metrics=metrics,
    )
