"""Connecting the indexer's post-commit hooks to identity and the did:web verifier.

Whoever builds the ``Indexer`` calls :func:`attach_identity_hooks` once; the
indexer then purges cached identities on ``#identity`` events and offers
foreign communities to the verifier queue (never blocking the batch).
"""

from __future__ import annotations

from typing import Any


def attach_identity_hooks(indexer: Any, ctx: Any) -> None:
    """``indexer`` is a ``coves.ingest.indexer.Indexer``; ``ctx`` the AppContext."""
    if ctx.identity is not None:
        indexer.on_identity_change.append(ctx.identity.on_identity_change)
    if ctx.didweb is not None:
        indexer.on_community_needs_verification = ctx.didweb.on_community_needs_verification
