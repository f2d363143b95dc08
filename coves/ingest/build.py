"""Constructing the production indexer from the application context.

The :class:`~coves.ingest.indexer.Indexer` takes explicit parameters so it
can be tested alone; this is the one place that maps settings onto them, for
the Jetstream consumer child and ``coves replay`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from coves.db import Database
from coves.ingest.indexer import IdentityHook, Indexer, VerificationHook
from coves.ingest.parse import RecordValidator
from coves.metrics import Metrics


def build_indexer(
    *,
    db: Database,
    instance_did: str,
    skip_did_web_verification: bool,
    metrics: Metrics,
    validator: RecordValidator | None = None,
    on_identity_change: Sequence[IdentityHook] = (),
    on_community_needs_verification: VerificationHook | None = None,
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
    )
