"""OAuth access tokens (RFC 9068 JWTs) and DPoP proofs (RFC 9449).

Only for authorization servers that sign access tokens with published
asymmetric keys: the Bluesky PDS runs stateful tokens this service cannot
check (see atproto-facts §C5), so service auth stays the primary path.
Issuers must be on the OAUTH_ISSUERS allowlist *before* anything is
fetched, so a token cannot make this server fetch an attacker's URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from coves import clock
from coves.atproto.keys import PublicKey
from coves.atproto.syntax import is_valid_did
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.auth.jwk import JWKError, public_key_from_jwk, thumbprint
from coves.auth.jwt import CompactJWT, number_claim, parse_jwt
from coves.auth.nonces import DpopNonces
from coves.auth.replay import ReplayCache
from coves.base64url import b64url_encode
from coves.logs import get_logger
from coves.net import FetchError, SafeFetcher
from coves.secrets import equal_in_constant_time

log = get_logger(__name__)

TOKEN_ALGS = {"ES256": "p256", "ES256K": "k256"}
JWKS_TTL = 3600.0
JWKS_MIN_REFETCH = 30.0  # an unknown kid may force a refetch at most this often
DPOP_MAX_AGE = 180.0
DPOP_WWW = 'DPoP algs="ES256"'


def _dpop_failure(reason: str, message: str) -> AuthFailure:
    return AuthFailure(reason, message, f'{DPOP_WWW}, error="invalid_dpop_proof"')


def normalize_htu(url: str) -> str | None:
    """Scheme://host[:port]/path, lower-cased scheme/host, default port dropped, no query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


@dataclass
class _IssuerKeys:
    keys: dict[str, tuple[PublicKey, str | None]]  # kid -> (key, alg)
    fetched_at: float


class JwksCache:
    """Per-issuer signing keys from ``<issuer>/.well-known/oauth-authorization-server``."""

    def __init__(self, fetcher: SafeFetcher, ttl: float = JWKS_TTL) -> None:
        self._fetcher = fetcher
        self.ttl = ttl
        self._issuers: dict[str, _IssuerKeys] = {}
        self.fetches = 0

    async def key(self, issuer: str, kid: str) -> tuple[PublicKey, str | None] | None:
        now = clock.monotonic()
        entry = self._issuers.get(issuer)
        if entry is None or now - entry.fetched_at >= self.ttl:
            entry = await self._refresh(issuer)
        found = entry.keys.get(kid) if entry else None
        if found is None and entry is not None and now - entry.fetched_at >= JWKS_MIN_REFETCH:
            entry = await self._refresh(issuer)  # keys rotated: refetch once
            found = entry.keys.get(kid) if entry else None
        return found

    async def _refresh(self, issuer: str) -> _IssuerKeys | None:
        self.fetches += 1
        try:
            meta = await self._fetcher.get_json(f"{issuer}/.well-known/oauth-authorization-server")
            if not isinstance(meta, dict) or meta.get("issuer") != issuer:
                raise FetchError("metadata issuer does not match")
            jwks_uri = meta.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise FetchError("metadata has no jwks_uri")
            jwks = await self._fetcher.get_json(jwks_uri)
        except FetchError as exc:
            log.warning("oauth issuer keys unavailable", issuer=issuer, error=str(exc))
            stale = self._issuers.get(issuer)
            return stale
        keys: dict[str, tuple[PublicKey, str | None]] = {}
        for jwk in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("use") not in (None, "sig"):
                continue
            try:
                keys[jwk["kid"]] = (public_key_from_jwk(jwk), jwk.get("alg"))
            except JWKError:
                continue
        entry = _IssuerKeys(keys, clock.monotonic())
        self._issuers[issuer] = entry
        return entry


class OAuthTokenVerifier:
    def __init__(
        self,
        *,
        issuers: tuple[str, ...],
        audiences: set[str],
        jwks: JwksCache,
        nonces: DpopNonces,
        clock_skew: float = 30.0,
        replay: ReplayCache | None = None,
    ) -> None:
        self._issuers = {i.rstrip("/") for i in issuers}
        self._audiences = audiences
        self._jwks = jwks
        self._nonces = nonces
        self.clock_skew = clock_skew
        self._replay = replay or ReplayCache()

    # -- Authorization: Bearer <access token> (tokens not bound to a key) --------
    async def verify_bearer(self, jwt: CompactJWT, token: str, request: AuthInput) -> Viewer:
        claims = await self._verify_token(jwt)
        if isinstance(claims.get("cnf"), dict):
            raise AuthFailure(
                "dpop_required", "this token is DPoP-bound; use the DPoP scheme", DPOP_WWW
            )
        return self._viewer(claims, "oauth")

    # -- Authorization: DPoP <access token> + DPoP: <proof> ------------------------
    async def verify_dpop(self, jwt: CompactJWT, token: str, request: AuthInput) -> Viewer:
        proof_text = request.headers.get("dpop", "").strip()
        if not proof_text:
            raise _dpop_failure("dpop_missing", "the DPoP proof header is missing")
        if "," in proof_text:
            raise _dpop_failure("dpop_malformed", "exactly one DPoP proof is allowed")
        proof = parse_jwt(proof_text, what="DPoP proof")
        jkt = self._check_proof(proof, request)
        try:
            claims = await self._verify_token(jwt)
        except AuthFailure as failure:
            failure.www_authenticate = f'{DPOP_WWW}, error="invalid_token"'
            raise
        expected_ath = b64url_encode(hashlib.sha256(token.encode("ascii")).digest())
        if not equal_in_constant_time(proof.payload.get("ath"), expected_ath):
            raise _dpop_failure("dpop_ath_mismatch", "DPoP proof is for another access token")
        cnf = claims.get("cnf")
        bound = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(bound, str):
            raise AuthFailure("dpop_unbound", "access token is not DPoP-bound", DPOP_WWW)
        if not equal_in_constant_time(bound, jkt):
            raise _dpop_failure("dpop_jkt_mismatch", "DPoP proof key does not match the token")
        jti = str(proof.payload["jti"])
        if self._replay.seen_before(f"{jkt} {jti}", DPOP_MAX_AGE * 1.1 + self.clock_skew):
            raise _dpop_failure("dpop_replayed", "DPoP proof was already used")
        viewer = self._viewer(claims, "oauth_dpop")
        return replace(viewer, dpop_nonce=self._nonces.current())

    def _check_proof(self, proof: CompactJWT, request: AuthInput) -> str:
        if proof.typ != "dpop+jwt":
            raise _dpop_failure("dpop_bad_type", "DPoP proof must have typ dpop+jwt")
        if proof.alg != "ES256":
            raise _dpop_failure("dpop_bad_alg", "DPoP proof must use ES256")
        jwk = proof.header.get("jwk")
        try:
            key = public_key_from_jwk(jwk)
        except JWKError as exc:
            raise _dpop_failure("dpop_bad_key", f"DPoP proof key is unusable: {exc}") from None
        if key.curve != "p256":
            raise _dpop_failure("dpop_bad_key", "DPoP proof key must be P-256")
        if not key.verify(proof.signing_input, proof.signature):
            raise _dpop_failure("dpop_bad_signature", "DPoP proof signature does not verify")
        payload = proof.payload
        if payload.get("htm") != request.http_method:
            raise _dpop_failure("dpop_htm_mismatch", "DPoP proof is for another HTTP method")
        htu = payload.get("htu")
        expected = normalize_htu(request.url)
        if not isinstance(htu, str) or expected is None or normalize_htu(htu) != expected:
            raise _dpop_failure("dpop_htu_mismatch", "DPoP proof is for another URL")
        iat = number_claim(payload, "iat")
        now = clock.wall_now()
        if iat is None or iat > now + self.clock_skew or now - iat > DPOP_MAX_AGE:
            raise _dpop_failure("dpop_iat", "DPoP proof is too old or from the future")
        jti = payload.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
            raise _dpop_failure("dpop_malformed", "DPoP proof needs a jti")
        if not self._nonces.is_valid(payload.get("nonce")):
            raise AuthFailure(
                "dpop_nonce",
                "a fresh DPoP nonce is required",
                'DPoP error="use_dpop_nonce", error_description="Resource server requires '
                'nonce in DPoP proof"',
                {"DPoP-Nonce": self._nonces.current()},
            )
        assert isinstance(jwk, dict)
        return thumbprint(jwk)

    async def _verify_token(self, jwt: CompactJWT) -> dict[str, Any]:
        if (jwt.typ or "").lower() not in ("at+jwt", "application/at+jwt"):
            raise AuthFailure("bad_type", "access token must have typ at+jwt")
        if jwt.alg not in TOKEN_ALGS:
            raise AuthFailure("bad_alg", "access token must use ES256 or ES256K")
        claims = jwt.payload
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer.rstrip("/") not in self._issuers:
            raise AuthFailure("unknown_issuer", "access token issuer is not trusted here")
        kid = jwt.header.get("kid")
        if not isinstance(kid, str):
            raise AuthFailure("malformed", "access token has no kid")
        found = await self._jwks.key(issuer.rstrip("/"), kid)
        if found is None:
            raise AuthFailure("unknown_key", "access token key is not published by its issuer")
        key, key_alg = found
        if TOKEN_ALGS[jwt.alg] != key.curve or (key_alg is not None and key_alg != jwt.alg):
            raise AuthFailure("bad_signature", "access token signature does not verify")
        if not key.verify(jwt.signing_input, jwt.signature):
            raise AuthFailure("bad_signature", "access token signature does not verify")
        now = clock.wall_now()
        exp = number_claim(claims, "exp")
        if exp is None:
            raise AuthFailure("malformed", "access token has no exp")
        if exp <= now - self.clock_skew:
            raise AuthFailure("expired", "access token has expired")
        nbf = number_claim(claims, "nbf")
        if nbf is not None and nbf > now + self.clock_skew:
            raise AuthFailure("not_yet_valid", "access token is not valid yet")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not is_valid_did(sub):
            raise AuthFailure("malformed", "access token subject is not a DID")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a in self._audiences for a in auds):
            raise AuthFailure("bad_audience", "access token is for another service")
        scope = claims.get("scope")
        if not isinstance(scope, str) or "atproto" not in scope.split():
            raise AuthFailure("bad_scope", "access token lacks the atproto scope")
        return claims

    @staticmethod
    def _viewer(claims: dict[str, Any], method: Any) -> Viewer:
        scopes = tuple(str(claims.get("scope", "")).split())
        return Viewer(did=str(claims["sub"]), method=method, scopes=scopes)
