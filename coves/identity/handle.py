"""Handle → DID, by DNS TXT ``_atproto.<handle>`` then HTTPS ``/.well-known/atproto-did``.

This direction alone proves nothing; the resolver only trusts a handle once
the DID document claims it back (bidirectional check).

Development only (``DEV_HANDLE_DOMAINS``, refused in production): handles under
the named domains are asked of the instance PDS instead
(``com.atproto.identity.resolveHandle``), which answers for the accounts it
hosts. A PDS on loopback hands out handles such as ``alice.coves.test`` that no
DNS or web server resolves; without this they would never verify and Coves would
show them as ``handle.invalid``. The DID document must still claim the handle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import trio

from coves.atproto.syntax import is_resolvable_handle, is_valid_did, normalize_handle
from coves.identity.errors import InvalidIdentifier, NotFound, ResolutionFailed
from coves.logs import get_logger
from coves.net import FetchError, SafeFetcher
from coves.net.errors import BadStatus

log = get_logger(__name__)

TxtLookup = Callable[[str], Awaitable[list[str]]]
DNS_TIMEOUT = 3.0


async def dns_txt_lookup(name: str) -> list[str]:
    """TXT strings at ``name`` (empty when none); dnspython in a worker thread."""
    import dns.exception
    import dns.resolver

    def lookup() -> list[str]:
        resolver = dns.resolver.Resolver()
        resolver.lifetime = DNS_TIMEOUT
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.DNSException:
            return []
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]

    return await trio.to_thread.run_sync(lookup, abandon_on_cancel=True)


def did_from_txt(records: list[str]) -> str | None:
    """The DID from ``did=...`` records; more than one valid record is ambiguous → None."""
    found = {
        r.removeprefix("did=").strip()
        for r in records
        if r.startswith("did=") and is_valid_did(r.removeprefix("did=").strip())
    }
    return found.pop() if len(found) == 1 else None


class HandleResolver:
    def __init__(
        self,
        fetcher: SafeFetcher,
        txt_lookup: TxtLookup = dns_txt_lookup,
        *,
        pds_domains: tuple[str, ...] = (),
        pds_url: str | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._txt = txt_lookup
        if pds_domains and not pds_url:
            raise ValueError("handle domains resolved by the PDS need its URL")
        # ".coves.test" style suffixes (the leading dot keeps "xcoves.test" out).
        self._pds_domains = tuple(
            "." + domain.strip().lstrip(".").lower() for domain in pds_domains if domain.strip()
        )
        self._pds_url = (pds_url or "").rstrip("/")

    def resolved_by_pds(self, handle: str) -> bool:
        return any(handle.endswith(domain) for domain in self._pds_domains)

    async def resolve(self, handle: str) -> str:
        """The DID the handle points at (unverified); raise NotFound when neither method answers."""
        handle = normalize_handle(handle)
        if not is_resolvable_handle(handle):
            raise InvalidIdentifier("not a resolvable handle")
        if self.resolved_by_pds(handle):
            return await self._from_pds(handle)
        try:
            with trio.fail_after(DNS_TIMEOUT + 1):
                records = await self._txt(f"_atproto.{handle}")
        except trio.TooSlowError:
            records = []
        did = did_from_txt(records)
        if did is not None:
            return did
        try:
            response = await self._fetcher.get(
                f"https://{handle}/.well-known/atproto-did", accept="text/plain", max_bytes=2048
            )
            text = response.text().strip()
        except FetchError as exc:
            log.debug("handle https lookup failed", handle=handle, fetch_reason=exc.reason)
            raise NotFound(f"{handle} does not resolve to a DID") from None
        if not is_valid_did(text):
            raise NotFound(f"{handle} does not resolve to a DID")
        return text

    async def _from_pds(self, handle: str) -> str:
        """The instance PDS's answer for a handle under a development domain."""
        try:
            response = await self._fetcher.get(
                f"{self._pds_url}/xrpc/com.atproto.identity.resolveHandle?"
                + urlencode({"handle": handle}),
                max_bytes=2048,
            )
            body = response.json()
        except BadStatus as exc:
            if exc.status == 400:  # HandleNotFound: no account of the PDS has it
                raise NotFound(f"{handle} is not a handle of the instance PDS") from None
            raise ResolutionFailed(f"the instance PDS answered {exc.status} for {handle}") from None
        except FetchError as exc:
            raise ResolutionFailed(f"the instance PDS did not resolve {handle}: {exc}") from None
        did = body.get("did") if isinstance(body, dict) else None
        if not isinstance(did, str) or not is_valid_did(did):
            raise NotFound(f"{handle} does not resolve to a DID")
        return did
