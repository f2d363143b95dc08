"""A fake identity network: PLC directory, did:web hosts, handle hosts and DNS.

Everything is served through ``httpx.MockTransport`` in the real wire
formats (DID documents as PLC and did:web serve them, ``atproto-did`` as
text/plain), so the resolver under test runs its real parsing code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coves.atproto.keys import PrivateKey, b58encode
from coves.net import SafeFetcher

PLC_URL = "https://plc.test"
PUBLIC_IP = "93.184.216.34"


def did_document(
    did: str,
    key: PrivateKey | None = None,
    *,
    handle: str | None = None,
    pds: str | None = "https://pds.test",
    legacy_key: bool = False,
    also_known_as: list[str] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": also_known_as
        if also_known_as is not None
        else ([f"at://{handle}"] if handle else []),
        "verificationMethod": [],
        "service": [],
    }
    if key is not None:
        public = key.public()
        if legacy_key:
            raw = public.key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            method_type = (
                "EcdsaSecp256k1VerificationKey2019"
                if public.curve == "k256"
                else "EcdsaSecp256r1VerificationKey2019"
            )
            multibase = "z" + b58encode(raw)
        else:
            method_type = "Multikey"
            multibase = public.multikey()
        doc["verificationMethod"].append(
            {
                "id": f"{did}#atproto",
                "type": method_type,
                "controller": did,
                "publicKeyMultibase": multibase,
            }
        )
    if pds is not None:
        doc["service"].append(
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}
        )
    return doc


@dataclass
class FakeNetwork:
    """Mutable world state; tests change it mid-test (key rotation, handle moves)."""

    plc: dict[str, dict[str, Any]] = field(default_factory=dict)
    web: dict[str, Any] = field(default_factory=dict)  # host -> did.json body
    atproto_did: dict[str, str] = field(default_factory=dict)  # handle host -> body
    txt: dict[str, list[str]] = field(default_factory=dict)  # name -> TXT strings
    addresses: dict[str, list[str]] = field(default_factory=dict)  # host -> IPs
    routes: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    dns_queries: list[str] = field(default_factory=list)
    latency: float = 0.0  # seconds each address lookup and DNS query takes

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        host = request.url.host
        path = request.url.path
        if url in self.routes:
            return self.routes[url](request)
        if url.startswith(PLC_URL + "/"):
            did = path.lstrip("/")
            doc = self.plc.get(did)
            if doc is None:
                return httpx.Response(404, json={"message": f"DID not registered: {did}"})
            return httpx.Response(200, json=doc)
        if path == "/.well-known/did.json":
            authority = host if request.url.port is None else f"{host}:{request.url.port}"
            body = self.web.get(authority)
            if body is None:
                return httpx.Response(404, text="not found")
            return httpx.Response(200, json=body)
        if path == "/.well-known/atproto-did":
            text = self.atproto_did.get(host)
            if text is None:
                return httpx.Response(404, text="not found")
            return httpx.Response(200, text=text, headers={"content-type": "text/plain"})
        return httpx.Response(404, text="no route")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    async def resolve(self, host: str, port: int) -> list[str]:
        if self.latency:
            await trio.sleep(self.latency)
        return self.addresses.get(host, [PUBLIC_IP])

    async def txt_lookup(self, name: str) -> list[str]:
        self.dns_queries.append(name)
        if self.latency:
            await trio.sleep(self.latency)
        return list(self.txt.get(name, []))

    def fetcher(self, *, allow_private: bool = False, max_bytes: int = 256 * 1024) -> SafeFetcher:
        return SafeFetcher(
            transport=self.transport,
            resolve=self.resolve,
            allow_private=allow_private,
            max_bytes=max_bytes,
        )

    def add_plc(
        self, did: str, key: PrivateKey | None, handle: str | None, *, dns: bool = True, **kw: Any
    ) -> dict[str, Any]:
        """Register a did:plc whose handle resolves back by DNS (or HTTPS when ``dns=False``)."""
        doc = did_document(did, key, handle=handle, **kw)
        self.plc[did] = doc
        if handle:
            if dns:
                self.txt[f"_atproto.{handle}"] = [f"did={did}"]
            else:
                self.atproto_did[handle] = did
        return doc
