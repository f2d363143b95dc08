"""Constructing the production indexer from the application context.

The :class:`~coves.ingest.indexer.Indexer` takes explicit parameters so it
can be tested alone; this is the one place that maps settings onto them, for
the Jetstream consumer child and ``coves replay`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from coves.db import Database
from coves.ingest.indexer import (
    ChangedHook,
    CommitsHook,
    IdentityHook,
    Indexer,
    VerificationHook,
)
from coves.ingest.parse import RecordValidator
from coves.metrics import Metrics

if TYPE_CHECKING:
    from coves.context import AppContext
    from coves.ingest.firehose_sink import FirehoseSink


def build_indexer(
    *,
    db: Database,
    instance_did: str,
    skip_did_web_verification: bool,
    metrics: Metrics,
    validator: RecordValidator | None = None,
    on_identity_change: Sequence[IdentityHook] = (),
    on_community_needs_verification: VerificationHook | None = None,
    on_commits_applied: Sequence[CommitsHook] = (),
    on_changed: Sequence[ChangedHook] = (),
) -> Indexer:
    """An indexer validating records against the lexicons (loaded if not given)."""
    if validator is None:
        from coves.lexicon import LexiconRegistry

        validator = LexiconRegistry.load()
    return Indexer(
        db,
        instance_did=instance_did,
        metrics=metrics,
        validator=validator,
        skip_did_web_verification=skip_did_web_verification,
        on_identity_change=on_identity_change,
        on_community_needs_verification=on_community_needs_verification,
        on_commits_applied=on_commits_applied,
        on_changed=on_changed,
    )


def production_indexer(ctx: AppContext, *, db: Database | None = None) -> Indexer:
    """The consumer's sink, and the one every write through Coves is indexed by:
    validating with the context's lexicons, purging cached identities on
    ``#identity`` (the resolver's database cache), offering foreign communities
    to the did:web verifier, and telling the invalidation channel what each batch
    makes stale, so that every process drops it (coves.changed).

    ``db`` is the database the indexer writes through; ingestion gets a pool of
    its own so queued reads never stand between it and a connection.
    """
    settings = ctx.settings
    invalidation = ctx.invalidation if db is None else ctx.invalidation.via(db)
    identity_hooks: list[IdentityHook] = []
    if ctx.identity is not None:
        identity_hooks.append(ctx.identity.on_identity_change)  # memory and database cache
    return build_indexer(
        db=db or ctx.db,
        instance_did=settings.instance_did,
        skip_did_web_verification=settings.skip_did_web_verification,
        metrics=ctx.metrics,
        validator=ctx.lexicons,
        on_identity_change=identity_hooks,
        on_community_needs_verification=(
            ctx.didweb.on_community_needs_verification if ctx.didweb is not None else None
        ),
        on_changed=[invalidation.changed],
    )


def production_firehose_sink(
    ctx: AppContext, indexer: Indexer, url: str, *, db: Database | None = None
) -> FirehoseSink:
    """One firehose source's sink over the shared indexer: keys and PDS fetches go
    through the identity layer and the safe fetcher (PDS URLs come from DID documents).
    ``db``: the indexer's pool (ingestion's own, like the indexer's)."""
    from coves.identity.factory import build_fetcher
    from coves.ingest.firehose_sink import FirehoseSink, PdsFetcher, ResolverKeys
    from coves.ingest.stream import source_name

    settings = ctx.settings
    identity = ctx.identity
    return FirehoseSink(
        indexer,
        db or ctx.db,
        source=source_name(url),
        metrics=ctx.metrics,
        verify=settings.firehose_verify,
        keys=ResolverKeys(identity) if identity is not None else None,
        fetcher=PdsFetcher(identity, build_fetcher(settings)) if identity is not None else None,
    )
