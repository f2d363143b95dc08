"""Verifying a community's ``hostedBy`` claim against its did:web host.

A community profile may say any instance hosts it; accepting that blindly
would let anyone attach communities to someone else's instance. The claim
holds when (1) the community's handle is verified (bidirectional), (2) the
did:web host is that handle's domain or a parent of it, and (3) the host's
``did.json`` has ``id`` equal to the hostedBy DID and ``alsoKnownAs``
containing ``at://<host>``. Unlike the Go version, (2) walks the handle's
parents instead of comparing eTLD+1 of one side, so subdomain instances
(``did:web:dev.coves.social``) verify.

Verdicts are cached per hostedBy DID (bounded LRU: 24 h success, 5 min
failure) and fetches are paced by a token bucket (10/s, burst 20).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import trio

from coves.atproto.syntax import is_valid_did
from coves.identity.did import DidFetcher, did_web_host
from coves.identity.document import parse_document
from coves.identity.errors import IdentityError, NotFound, ResolutionFailed
from coves.identity.ratelimit import TokenBucket
from coves.identity.resolver import IdentityResolver
from coves.logs import get_logger
from coves.ttlcache import ExpiringLRU

log = get_logger(__name__)

Outcome = Literal["verified", "rejected", "retry"]
SUCCESS_TTL = 86_400.0
FAILURE_TTL = 300.0
CACHE_SIZE = 1000


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str | None = None

    @property
    def verified(self) -> bool:
        return self.outcome == "verified"


def host_covers_handle(host: str, handle: str) -> bool:
    """True when ``host`` is the handle's domain or one of its parent domains.

    The handle itself counts (a community may be hosted at its own name); a
    bare TLD never does.
    """
    host, handle = host.lower().rstrip("."), handle.lower().rstrip(".")
    if "." not in host:
        return False
    return handle == host or handle.endswith("." + host)


class HostedByVerifier:
    def __init__(
        self,
        resolver: IdentityResolver,
        did_fetcher: DidFetcher,
        *,
        skip: bool = False,
        bucket: TokenBucket | None = None,
        cache_size: int = CACHE_SIZE,
        success_ttl: float = SUCCESS_TTL,
        failure_ttl: float = FAILURE_TTL,
    ) -> None:
        self._resolver = resolver
        self._dids = did_fetcher
        self.skip = skip
        self.bucket = bucket or TokenBucket(10.0, 20)
        self.cache: ExpiringLRU[str, Verdict] = ExpiringLRU(cache_size)
        self.success_ttl = success_ttl
        self.failure_ttl = failure_ttl
        self.fetches = 0

    async def verify(self, community_did: str, hosted_by: str) -> Verdict:
        if self.skip:
            return Verdict("verified", "skipped (SKIP_DID_WEB_VERIFICATION)")
        if not is_valid_did(community_did):
            return Verdict("rejected", "community DID is invalid")
        if not hosted_by.startswith("did:web:"):
            return Verdict("rejected", "hostedBy is not a did:web")
        try:
            authority = did_web_host(hosted_by)
        except IdentityError as exc:
            return Verdict("rejected", f"hostedBy is not a usable did:web ({exc.reason})")
        host = authority.split(":", 1)[0]
        try:
            community = await self._resolver.identity(community_did)
        except NotFound:
            return Verdict("rejected", "community DID does not resolve")
        except ResolutionFailed as exc:
            return Verdict("retry", f"community DID resolution failed ({exc.reason})")
        except IdentityError as exc:
            return Verdict("rejected", f"community DID is unusable ({exc.reason})")
        if not community.handle_verified:
            return Verdict("rejected", "community handle is not verified")
        if not host_covers_handle(host, community.handle):
            return Verdict("rejected", "hostedBy domain does not cover the community handle")
        return await self._check_host_document(hosted_by, host)

    async def _check_host_document(self, hosted_by: str, host: str) -> Verdict:
        cached = self.cache.get(hosted_by)
        if cached is not None:
            return cached
        await self.bucket.acquire()
        self.fetches += 1
        verdict = await self._fetch_verdict(hosted_by, host)
        ttl = self.success_ttl if verdict.verified else self.failure_ttl
        self.cache.set(hosted_by, verdict, ttl)
        return verdict

    async def _fetch_verdict(self, hosted_by: str, host: str) -> Verdict:
        try:
            with trio.move_on_after(15.0) as scope:
                raw = await self._dids.fetch(hosted_by)
            if scope.cancelled_caught:
                return Verdict("retry", "did.json fetch timed out")
        except NotFound:
            return Verdict("rejected", "hostedBy host serves no did.json")
        except ResolutionFailed as exc:
            return Verdict("retry", f"did.json fetch failed ({exc})")
        try:
            doc = parse_document(hosted_by, raw)
        except IdentityError:
            return Verdict("rejected", "did.json id does not match hostedBy")
        if f"at://{host}" not in doc.also_known_as:
            return Verdict("rejected", f"did.json alsoKnownAs lacks at://{host}")
        return Verdict("verified", None)


class HostedByQueue:
    """The indexer's side of the verifier: a bounded channel plus a de-duplicating offer.

    ``offer`` never blocks the indexer: when the channel is full the request
    is dropped and counted, and the verifier's periodic database sweep picks
    the community up later (it is still 'unverified' there), so no work is
    lost, only delayed.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.send, self.receive = trio.open_memory_channel[tuple[str, str]](capacity)
        self._pending: set[str] = set()
        self.dropped = 0

    def offer(self, community_did: str, hosted_by: str) -> bool:
        """Queue a verification; False when it was already queued or the queue is full."""
        if community_did in self._pending:
            return False
        try:
            self.send.send_nowait((community_did, hosted_by))
        except trio.WouldBlock:
            self.dropped += 1
            return False
        self._pending.add(community_did)
        return True

    def on_community_needs_verification(self, community_did: str, hosted_by: str) -> None:
        """The indexer's post-commit hook (``Indexer.on_community_needs_verification``)."""
        self.offer(community_did, hosted_by)

    async def put(self, community_did: str, hosted_by: str) -> None:
        """Queue with backpressure (the sweep's path): waits while the queue is full."""
        if community_did in self._pending:
            return
        self._pending.add(community_did)
        try:
            await self.send.send((community_did, hosted_by))
        except BaseException:
            self._pending.discard(community_did)
            raise

    def done(self, community_did: str) -> None:
        self._pending.discard(community_did)

    @property
    def depth(self) -> int:
        return len(self._pending)
