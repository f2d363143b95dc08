"""Inter-service auth: JWTs a user's PDS signs with the account's repo key.

This is the credential a third-party AppView can actually verify (PDS
session tokens are HS256 and OAuth access tokens are mostly stateful), so
it is the primary path. Checks follow the reference verifier
(``xrpc-server/src/auth.ts``) plus a lifetime cap and jti replay cache.
"""

from __future__ import annotations

from typing import Protocol

from coves import clock
from coves.atproto.keys import PublicKey
from coves.atproto.syntax import is_valid_did
from coves.auth.base import AuthFailure, Viewer
from coves.auth.jwt import CompactJWT, number_claim
from coves.auth.replay import MemoryReplayGuard, ReplayGuard
from coves.identity import DidDocument, IdentityError
from coves.logs import get_logger

log = get_logger(__name__)

ALGORITHMS = {"ES256K": "k256", "ES256": "p256"}
REJECTED_TYPES = {"at+jwt", "refresh+jwt", "dpop+jwt"}


class DocumentSource(Protocol):
    async def document(self, did: str, *, force_refresh: bool = False) -> DidDocument: ...


class ServiceAuthVerifier:
    def __init__(
        self,
        documents: DocumentSource,
        *,
        service_did: str,
        service_id: str,
        max_lifetime: float = 300.0,
        clock_skew: float = 30.0,
        replay: ReplayGuard | None = None,
    ) -> None:
        self._documents = documents
        self._audiences = {service_did, f"{service_did}#{service_id}"}
        self.max_lifetime = max_lifetime
        self.clock_skew = clock_skew
        self._replay: ReplayGuard = replay or MemoryReplayGuard()

    async def verify(self, jwt: CompactJWT, nsid: str) -> Viewer:
        issuer = self._check_claims(jwt, nsid)
        fragment = self._key_fragment(jwt)
        key = await self._key(issuer, fragment, force_refresh=False)
        if not self._signature_ok(jwt, key):
            # The key may have rotated since the document was cached: refetch once.
            key = await self._key(issuer, fragment, force_refresh=True)
            if not self._signature_ok(jwt, key):
                raise AuthFailure("bad_signature", "service auth signature does not verify")
        exp = number_claim(jwt.payload, "exp")
        assert exp is not None
        jti = str(jwt.payload["jti"])
        ttl = exp - clock.wall_now() + self.clock_skew
        if await self._replay.seen_before(f"{issuer} {jti}", ttl):
            raise AuthFailure("replayed", "service auth token was already used")
        return Viewer(did=issuer, method="service_auth")

    def _check_claims(self, jwt: CompactJWT, nsid: str) -> str:
        if jwt.typ is not None and jwt.typ.lower() in REJECTED_TYPES:
            raise AuthFailure("bad_type", f"a {jwt.typ} token is not a service auth token")
        if jwt.typ is None or jwt.typ.upper() != "JWT":  # typ is case-insensitive (RFC 7515)
            raise AuthFailure("bad_type", "service auth tokens must have typ JWT")
        if jwt.alg not in ALGORITHMS:
            raise AuthFailure("bad_alg", "service auth must use ES256K or ES256")
        payload = jwt.payload
        iss = payload.get("iss")
        if not isinstance(iss, str):
            raise AuthFailure("malformed", "service auth token has no iss")
        issuer = iss.split("#", 1)[0]  # a #fragment on iss is legacy; the DID is what counts
        if not is_valid_did(issuer):
            raise AuthFailure("malformed", "service auth iss is not a DID")
        aud = payload.get("aud")
        if not isinstance(aud, str) or aud not in self._audiences:
            raise AuthFailure("bad_audience", "service auth token is for another service")
        if payload.get("lxm") != nsid:
            raise AuthFailure("bad_lxm", "service auth token is not for this method")
        exp = number_claim(payload, "exp")
        iat = number_claim(payload, "iat")
        if exp is None or iat is None:
            raise AuthFailure("malformed", "service auth token needs numeric exp and iat")
        jti = payload.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
            raise AuthFailure("malformed", "service auth token needs a jti")
        now = clock.wall_now()
        if exp <= now - self.clock_skew:
            raise AuthFailure("expired", "service auth token has expired")
        if iat > now + self.clock_skew:
            raise AuthFailure("not_yet_valid", "service auth token was issued in the future")
        nbf = number_claim(payload, "nbf")
        if nbf is not None and nbf > now + self.clock_skew:
            raise AuthFailure("not_yet_valid", "service auth token is not valid yet")
        if exp - iat > self.max_lifetime:
            raise AuthFailure("too_long_lived", "service auth token lifetime is too long")
        return issuer

    @staticmethod
    def _key_fragment(jwt: CompactJWT) -> str:
        """Which verification method signs: ``kid`` (new), else an ``iss`` fragment (legacy)."""
        kid = jwt.header.get("kid")
        iss = str(jwt.payload.get("iss", ""))
        if isinstance(kid, str) and "#" in kid:
            owner, fragment = kid.split("#", 1)
            if owner in ("", iss.split("#", 1)[0]) and fragment:
                return fragment
            raise AuthFailure("malformed", "service auth kid names another DID's key")
        if kid is not None:
            raise AuthFailure("malformed", "service auth kid must be a #fragment")
        if "#" in iss:
            return iss.split("#", 1)[1] or "atproto"
        return "atproto"

    async def _key(self, issuer: str, fragment: str, *, force_refresh: bool) -> PublicKey:
        try:
            doc = await self._documents.document(issuer, force_refresh=force_refresh)
        except IdentityError as exc:
            log.info("service auth issuer unresolvable", issuer=issuer, why=exc.reason)
            raise AuthFailure("unknown_issuer", "could not resolve the token issuer") from None
        key = doc.verification_keys.get(fragment)
        if key is None:
            raise AuthFailure("unknown_issuer", f"the issuer has no #{fragment} signing key")
        return key

    @staticmethod
    def _signature_ok(jwt: CompactJWT, key: PublicKey) -> bool:
        if ALGORITHMS.get(jwt.alg or "") != key.curve:
            return False
        return key.verify(jwt.signing_input, jwt.signature, allow_high_s=True)
