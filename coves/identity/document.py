"""What Coves needs from a DID document, parsed strictly once.

Only four facts matter to an AppView: the DID, the handle it claims
(unverified until the handle resolves back), the PDS endpoint and the
``#atproto`` signing key. Everything else in the document is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from coves.atproto import keys
from coves.atproto.syntax import is_valid_handle, normalize_handle
from coves.identity.errors import BadDocument


@dataclass(frozen=True)
class DidDocument:
    did: str
    claimed_handle: str | None
    pds_url: str | None
    signing_key: keys.PublicKey | None
    also_known_as: tuple[str, ...]
    raw: dict[str, Any]


def _matches_fragment(did: str, ident: Any, fragment: str) -> bool:
    return isinstance(ident, str) and ident in (f"#{fragment}", f"{did}#{fragment}")


def parse_document(did: str, doc: Any) -> DidDocument:
    """Validate ``doc`` as the document of ``did``; raise BadDocument otherwise."""
    if not isinstance(doc, dict):
        raise BadDocument("DID document is not a JSON object")
    if doc.get("id") != did:
        raise BadDocument("DID document id does not match the DID")
    aka_raw = doc.get("alsoKnownAs") or []
    if not isinstance(aka_raw, list):
        raise BadDocument("alsoKnownAs is not a list")
    also_known_as = tuple(a for a in aka_raw if isinstance(a, str))
    handle = None
    for entry in also_known_as:
        if entry.startswith("at://"):
            candidate = normalize_handle(entry.removeprefix("at://"))
            if is_valid_handle(candidate):
                handle = candidate
                break
    return DidDocument(
        did=did,
        claimed_handle=handle,
        pds_url=_pds_endpoint(did, doc.get("service")),
        signing_key=_signing_key(did, doc.get("verificationMethod")),
        also_known_as=also_known_as,
        raw=doc,
    )


def _pds_endpoint(did: str, services: Any) -> str | None:
    if not isinstance(services, list):
        return None
    for service in services:
        if not isinstance(service, dict):
            continue
        if not _matches_fragment(did, service.get("id"), "atproto_pds"):
            continue
        if service.get("type") != "AtprotoPersonalDataServer":
            continue
        endpoint = service.get("serviceEndpoint")
        if not isinstance(endpoint, str):
            return None
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.username:
            return None
        return f"{parts.scheme}://{parts.netloc}"
    return None


def _signing_key(did: str, methods: Any) -> keys.PublicKey | None:
    if not isinstance(methods, list):
        return None
    for method in methods:
        if not isinstance(method, dict):
            continue
        if not _matches_fragment(did, method.get("id"), "atproto"):
            continue
        controller = method.get("controller")
        if controller is not None and controller != did:
            return None
        multibase = method.get("publicKeyMultibase")
        if not isinstance(multibase, str):
            return None
        try:
            return keys.parse_verification_method(str(method.get("type")), multibase)
        except keys.KeyError_:
            return None
    return None
