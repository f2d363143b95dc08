"""``social.coves.aggregator.register``: an account proves it controls a domain.

The domain must serve the DID at ``/.well-known/atproto-did`` (fetched with
the safe fetcher: public addresses only, no redirects, 4 KB at most). That
alone proves the *domain's* side only: anyone can serve any DID string, so
the original AppView let a stranger register someone else's DID and lock
the real owner out. Here the *DID's* side must agree too: either the caller
is signed in as that DID, or the DID document names the domain
(``alsoKnownAs: at://<domain>``, the atproto handle proof). Registration is
what ``createApiKey`` requires; it does not by itself change how the
account's posts are checked (an indexed ``aggregator.service`` record, which
only the DID can write, does).
"""

from __future__ import annotations

from coves import clock
from coves.atproto.syntax import is_valid_did, is_valid_domain
from coves.db import Database
from coves.db.queries import aggregators as q
from coves.errors import XRPCError
from coves.identity.errors import IdentityError
from coves.identity.resolver import IdentityResolver
from coves.logs import get_logger
from coves.net import FetchError, SafeFetcher
from coves.net.addresses import literal_address

log = get_logger(__name__)

WELL_KNOWN_URL = "https://{domain}/.well-known/atproto-did"
WELL_KNOWN_MAX_BYTES = 4096


def _invalid(message: str) -> XRPCError:
    return XRPCError(400, "InvalidDID", message)


def normalize_domain(raw: str) -> str:
    """``https://Example.com/`` -> ``example.com``; plain-HTTP and IP literals refused."""
    domain = raw.strip().lower()
    if domain.startswith("http://"):
        raise _invalid("domain must be served over https")
    domain = domain.removeprefix("https://").rstrip("/")
    if literal_address(domain) is not None or not is_valid_domain(domain):
        raise _invalid("domain must be a host name such as bot.example.com")
    return domain


class AggregatorRegistrar:
    def __init__(
        self,
        db: Database,
        fetcher: SafeFetcher,
        identity: IdentityResolver,
        *,
        well_known_url: str = WELL_KNOWN_URL,
    ) -> None:
        self._db = db
        self._fetcher = fetcher
        self._identity = identity
        # A template, not a setting: production always asks https on port 443.
        self._well_known_url = well_known_url

    async def register(self, did: str, domain_raw: str, *, caller: str | None) -> dict[str, str]:
        did = did.strip()
        if not is_valid_did(did) or not did.startswith(("did:plc:", "did:web:")):
            raise _invalid("did must be a did:plc or did:web")
        domain = normalize_domain(domain_raw)
        if caller is not None and caller != did:
            raise XRPCError(403, "Forbidden", "you may only register your own DID")
        if await q.registration(self._db, did) is not None:
            raise XRPCError(409, "AlreadyRegistered", "this DID is already registered")
        await self._check_domain(did, domain)
        try:
            identity = await self._identity.identity(did)
        except IdentityError as exc:
            raise XRPCError(
                400, "DIDResolutionFailed", f"the DID could not be resolved ({exc.reason})"
            ) from None
        if caller != did and f"at://{domain}" not in {
            alias.lower() for alias in identity.document.also_known_as
        }:
            raise XRPCError(
                401,
                "DomainVerificationFailed",
                f"the DID document does not name {domain} (alsoKnownAs at://{domain}); "
                "sign in as the aggregator's account to register it with another domain",
            )
        handle = identity.handle if identity.handle_verified else None
        registered = await q.register(
            self._db,
            did,
            domain=domain,
            handle=handle,
            pds_url=identity.pds_url,
            at=clock.utcnow(),
        )
        if not registered:
            raise XRPCError(409, "AlreadyRegistered", "this DID is already registered")
        log.info("aggregator registered", aggregator=did, domain=domain)
        return {
            "did": did,
            "handle": handle or domain,
            "message": (
                "Registered. Next, write your service record at "
                f"at://{did}/social.coves.aggregator.service/self, then sign in and create "
                "an API key with social.coves.aggregator.createApiKey."
            ),
        }

    async def _check_domain(self, did: str, domain: str) -> None:
        url = self._well_known_url.format(domain=domain)
        try:
            response = await self._fetcher.get(
                url, accept="text/plain", max_bytes=WELL_KNOWN_MAX_BYTES
            )
        except FetchError as exc:
            raise XRPCError(
                401,
                "DomainVerificationFailed",
                f"could not read {url}: {exc.reason.replace('_', ' ')}",
            ) from None
        try:
            served = response.content.decode("utf-8").strip()
        except UnicodeDecodeError:
            served = ""
        if served != did:
            raise XRPCError(401, "DomainVerificationFailed", f"{url} does not serve this DID")
