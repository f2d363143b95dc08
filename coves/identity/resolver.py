"""The identity resolver: DID ⇄ handle with a two-level cache.

Lookups go memory LRU → PostgreSQL ``identity_cache`` → network. Successes
live for ``ttl``; failures for the much shorter ``negative_ttl`` so a
missing or broken identity is not refetched on every request yet heals
quickly. ``purge`` (driven by identity events from the stream) and
``force_refresh`` (after a signature fails: the key may have rotated)
bypass the cache.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import trio

from coves import clock
from coves.atproto import keys
from coves.atproto.syntax import INVALID_HANDLE, is_valid_did, normalize_handle
from coves.db import Database, DatabaseError
from coves.db.queries import identity as q
from coves.identity.did import DidFetcher
from coves.identity.document import DidDocument, parse_document
from coves.identity.errors import (
    BadDocument,
    IdentityError,
    InvalidIdentifier,
    NotFound,
    ResolutionFailed,
)
from coves.identity.handle import HandleResolver, TxtLookup, dns_txt_lookup
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.ttlcache import ExpiringLRU

log = get_logger(__name__)

_NEGATIVE: dict[str, type[ResolutionFailed]] = {
    "not_found": NotFound,
    "bad_document": BadDocument,
    "resolution_failed": ResolutionFailed,
}


TRANSIENT_TTL = 30.0


@dataclass(frozen=True)
class Identity:
    """A DID with its *verified* handle (``handle.invalid`` when not bidirectional)."""

    did: str
    handle: str
    pds_url: str | None
    signing_key: keys.PublicKey | None
    document: DidDocument

    @property
    def handle_verified(self) -> bool:
        return self.handle != INVALID_HANDLE


@dataclass(frozen=True)
class _Negative:
    error: ResolutionFailed


class IdentityResolver:
    def __init__(
        self,
        *,
        fetcher: SafeFetcher,
        plc_url: str,
        db: Database | None = None,
        txt_lookup: TxtLookup = dns_txt_lookup,
        pds_handle_domains: tuple[str, ...] = (),
        pds_url: str | None = None,
        ttl: float = 86_400.0,
        negative_ttl: float = 300.0,
        memory_size: int = 10_000,
        min_refresh_interval: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._dids = DidFetcher(fetcher, plc_url)
        self._handles = HandleResolver(
            fetcher, txt_lookup, pds_domains=pds_handle_domains, pds_url=pds_url
        )
        self._db = db
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._docs: ExpiringLRU[str, DidDocument | _Negative] = ExpiringLRU(memory_size)
        self._handle_dids: ExpiringLRU[str, str | _Negative] = ExpiringLRU(memory_size)
        self.network_fetches = 0
        self._inflight: dict[tuple[str, str], trio.Event] = {}
        self.min_refresh_interval = min_refresh_interval
        self._refreshed: ExpiringLRU[str, bool] = ExpiringLRU(memory_size)
        self._lookups = (
            metrics.counter(
                "coves_identity_lookups_total",
                "identity lookups by kind (did/handle) and where the answer came from",
                ["kind", "source"],
            )
            if metrics is not None
            else None
        )

    @property
    def did_fetcher(self) -> DidFetcher:
        """The uncached document fetcher (the did:web verifier keeps its own verdict cache)."""
        return self._dids

    # -- DID documents ---------------------------------------------------------
    async def document(self, did: str, *, force_refresh: bool = False) -> DidDocument:
        """The parsed DID document; raise an IdentityError subclass when unavailable."""
        if not is_valid_did(did):
            raise InvalidIdentifier("not a valid DID")
        if force_refresh:
            # Anyone can send a badly signed token naming a victim's DID; without
            # this, each one would force a fetch from the PLC directory.
            if self._refreshed.get(did) is not None:
                force_refresh = False
            else:
                self._refreshed.set(did, True, self.min_refresh_interval)
        if not force_refresh:
            cached = self._docs.get(did)
            source = "memory"
            if cached is None:
                cached = await self._load_doc(did)
                source = "database"
            if cached is not None:
                self._count("did", source)
                if isinstance(cached, _Negative):
                    raise cached.error
                return cached
        # Single flight: concurrent misses for one DID share one fetch.
        while (pending := self._inflight.get(("did", did))) is not None:
            await pending.wait()
            shared = self._docs.get(did)
            if shared is not None:
                if isinstance(shared, _Negative):
                    raise shared.error
                return shared
        done = self._inflight[("did", did)] = trio.Event()
        try:
            try:
                self.network_fetches += 1
                doc = parse_document(did, await self._dids.fetch(did))
            except ResolutionFailed as exc:
                self._count("did", f"network_{exc.reason}")
                self._docs.set(did, _Negative(exc), self._negative_ttl(exc))
                await self._store("did", did, did, None, exc)
                raise
            self._count("did", "network")
            self._docs.set(did, doc, self.ttl)
            await self._store("did", did, did, doc.raw, None)
            return doc
        finally:
            del self._inflight[("did", did)]
            done.set()

    async def _load_doc(self, did: str) -> DidDocument | _Negative | None:
        row = await self._load("did", did)
        if row is None:
            return None
        value, error = row
        if value is None:
            negative = _Negative(_NEGATIVE.get(error or "", ResolutionFailed)("cached failure"))
            self._docs.set(did, negative, self._negative_ttl(negative.error))
            return negative
        try:
            doc = parse_document(did, value)
        except BadDocument:
            return None
        self._docs.set(did, doc, self.ttl)
        return doc

    # -- handles -----------------------------------------------------------------
    async def handle_to_did(self, handle: str, *, force_refresh: bool = False) -> str:
        """What the handle's DNS/HTTPS claims (one direction only; see :meth:`resolve_actor`)."""
        handle = normalize_handle(handle)
        if not force_refresh:
            cached = self._handle_dids.get(handle)
            source = "memory"
            if cached is None:
                cached = await self._load_handle(handle)
                source = "database"
            if cached is not None:
                self._count("handle", source)
                if isinstance(cached, _Negative):
                    raise cached.error
                return cached
        while (pending := self._inflight.get(("handle", handle))) is not None:
            await pending.wait()
            shared = self._handle_dids.get(handle)
            if shared is not None:
                if isinstance(shared, _Negative):
                    raise shared.error
                return shared
        done = self._inflight[("handle", handle)] = trio.Event()
        try:
            try:
                self.network_fetches += 1
                did = await self._handles.resolve(handle)
            except ResolutionFailed as exc:
                self._count("handle", f"network_{exc.reason}")
                self._handle_dids.set(handle, _Negative(exc), self._negative_ttl(exc))
                await self._store("handle", handle, None, None, exc)
                raise
            self._count("handle", "network")
            self._handle_dids.set(handle, did, self.ttl)
            await self._store("handle", handle, did, {"did": did}, None)
            return did
        finally:
            del self._inflight[("handle", handle)]
            done.set()

    async def _load_handle(self, handle: str) -> str | _Negative | None:
        row = await self._load("handle", handle)
        if row is None:
            return None
        value, error = row
        if isinstance(value, dict) and is_valid_did(str(value.get("did"))):
            did = str(value["did"])
            self._handle_dids.set(handle, did, self.ttl)
            return did
        negative = _Negative(_NEGATIVE.get(error or "", ResolutionFailed)("cached failure"))
        self._handle_dids.set(handle, negative, self._negative_ttl(negative.error))
        return negative

    # -- the combined view -------------------------------------------------------
    async def identity(self, did: str, *, force_refresh: bool = False) -> Identity:
        """The DID's document plus its handle if (and only if) the handle points back."""
        doc = await self.document(did, force_refresh=force_refresh)
        handle = INVALID_HANDLE
        if doc.claimed_handle is not None:
            try:
                back = await self.handle_to_did(doc.claimed_handle, force_refresh=force_refresh)
            except IdentityError:
                back = None
            if back == did:
                handle = doc.claimed_handle
        return Identity(did, handle, doc.pds_url, doc.signing_key, doc)

    async def resolve_actor(self, actor: str) -> Identity:
        """A DID or handle to a verified identity; a handle must be bidirectional."""
        if actor.startswith("did:"):
            return await self.identity(actor)
        handle = normalize_handle(actor)
        did = await self.handle_to_did(handle)
        found = await self.identity(did)
        if found.handle != handle:
            raise NotFound(f"{handle} is not claimed back by its DID document")
        return found

    # -- invalidation ------------------------------------------------------------
    async def purge(self, did_or_handle: str) -> None:
        """Forget everything cached about a DID or handle (memory and database)."""
        key = did_or_handle if did_or_handle.startswith("did:") else normalize_handle(did_or_handle)
        targets = {key}
        cached = self._docs.get(key)
        if isinstance(cached, DidDocument) and cached.claimed_handle:
            targets.add(cached.claimed_handle)
        for target in targets:
            self._docs.pop(target)
            self._handle_dids.pop(target)
        if self._db is not None:
            try:
                await q.purge(self._db, sorted(targets))
            except DatabaseError as exc:
                log.warning("identity cache purge failed", error=repr(exc))

    def forget_local(self, did_or_handle: str) -> None:
        """Forget what this process holds in memory about a DID or handle.

        Another process purged the database cache (``purge``) and said so on
        the invalidation channel (coves/invalidation.py); the next lookup here
        reads the database or the network again.
        """
        key = did_or_handle if did_or_handle.startswith("did:") else normalize_handle(did_or_handle)
        cached = self._docs.get(key)
        if isinstance(cached, DidDocument) and cached.claimed_handle:
            self._handle_dids.pop(cached.claimed_handle)
        self._docs.pop(key)
        self._handle_dids.pop(key)

    def clear_local(self) -> None:
        """Forget everything held in memory (invalidations may have been missed)."""
        self._docs.clear()
        self._handle_dids.clear()

    async def on_identity_change(self, dids: Iterable[str]) -> None:
        """The indexer's callback for ``#identity`` events: drop the cached identities."""
        for did in dids:
            await self.purge(did)

    def _count(self, kind: str, source: str) -> None:
        if self._lookups is not None:
            self._lookups.labels(kind, source).inc()

    def _negative_ttl(self, error: IdentityError) -> float:
        """Definite answers (not found, bad document) for the full negative TTL;
        transient ones (timeouts, unreachable hosts) for at most 30 s."""
        if isinstance(error, NotFound | BadDocument):
            return self.negative_ttl
        return min(self.negative_ttl, TRANSIENT_TTL)

    # -- the PostgreSQL level ------------------------------------------------------
    async def _load(self, kind: str, key: str) -> tuple[Any, str | None] | None:
        if self._db is None:
            return None
        try:
            row = await q.get_cached(self._db, kind, key, clock.utcnow())
        except DatabaseError as exc:
            log.warning("identity cache read failed", error=repr(exc))
            return None
        if row is None:
            return None
        return row["value"], row["error"]

    async def _store(
        self, kind: str, key: str, did: str | None, value: Any, error: IdentityError | None
    ) -> None:
        if self._db is None:
            return
        ttl = self._negative_ttl(error) if error is not None else self.ttl
        try:
            await q.put_cached(
                self._db,
                kind,
                key,
                did=did,
                value=value,
                error=error.reason if error is not None else None,
                expires_at=clock.utcnow() + timedelta(seconds=ttl),
            )
        except DatabaseError as exc:
            log.warning("identity cache write failed", error=repr(exc))
