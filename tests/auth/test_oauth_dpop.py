from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio

from coves.atproto.keys import PrivateKey
from coves.auth.authenticator import CovesAuthenticator
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.auth.nonces import DpopNonces
from coves.auth.oauth import JwksCache, OAuthTokenVerifier, normalize_htu
from tests.auth.helpers import ALICE, NSID, SERVICE_AUD, URL, World
from tests.support import tokens
from tests.support.tokens import MISSING

ISSUER = "https://auth.test"
KID = "key-1"


@dataclass
class OAuthWorld:
    base: World = field(default_factory=World)
    server_key: PrivateKey = field(default_factory=lambda: PrivateKey.generate("p256"))
    client_key: PrivateKey = field(default_factory=lambda: PrivateKey.generate("p256"))
    kid: str = KID

    def __post_init__(self) -> None:
        net = self.base.net
        net.routes[f"{ISSUER}/.well-known/oauth-authorization-server"] = lambda r: httpx.Response(
            200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/oauth/jwks"}
        )
        net.routes[f"{ISSUER}/oauth/jwks"] = lambda r: httpx.Response(
            200, json={"keys": [{**tokens.public_jwk(self.server_key), "kid": self.kid}]}
        )
        self.nonces = DpopNonces(b"0123456789abcdef0123456789abcdef")
        self.jwks = JwksCache(net.fetcher())
        self.oauth = OAuthTokenVerifier(
            issuers=(ISSUER,), audiences={SERVICE_AUD}, jwks=self.jwks, nonces=self.nonces
        )
        self.auth = CovesAuthenticator(self.base.service_auth, self.oauth)

    def token(self, *, bound: bool = True, **kw: Any) -> str:
        jkt = tokens.jwk_thumbprint(tokens.public_jwk(self.client_key)) if bound else None
        return tokens.access_token(
            self.server_key,
            kw.pop("kid", self.kid),
            iss=kw.pop("iss", ISSUER),
            sub=kw.pop("sub", ALICE),
            aud=kw.pop("aud", SERVICE_AUD),
            jkt=jkt,
            **kw,
        )

    def proof(self, token: str | None, *, key: PrivateKey | None = None, **kw: Any) -> str:
        kw.setdefault("nonce", self.nonces.current())
        return tokens.dpop_proof(
            key or self.client_key,
            htm=kw.pop("htm", "GET"),
            htu=kw.pop("htu", URL),
            token=token,
            **kw,
        )

    async def call(self, authorization: str, proof: str | None = None) -> Viewer | None:
        headers = {"authorization": authorization}
        if proof is not None:
            headers["dpop"] = proof
        req = AuthInput(http_method="GET", url=URL, nsid=NSID, headers=headers)
        with trio.fail_after(5):
            return await self.auth.authenticate(req)

    async def fails(self, authorization: str, proof: str | None = None) -> AuthFailure:
        with pytest.raises(AuthFailure) as info:
            await self.call(authorization, proof)
        return info.value


async def test_dpop_bound_token_with_valid_proof() -> None:
    w = OAuthWorld()
    token = w.token()
    viewer = await w.call(f"DPoP {token}", w.proof(token))
    assert viewer is not None
    assert (viewer.did, viewer.method) == (ALICE, "oauth_dpop")
    assert "atproto" in viewer.scopes
    assert viewer.dpop_nonce is not None and w.nonces.is_valid(viewer.dpop_nonce)


async def test_nonce_handshake() -> None:
    w = OAuthWorld()
    token = w.token()
    failure = await w.fails(f"DPoP {token}", w.proof(token, nonce=MISSING))
    assert failure.reason == "dpop_nonce"
    assert 'error="use_dpop_nonce"' in failure.www_authenticate
    nonce = failure.headers["DPoP-Nonce"]
    assert w.nonces.is_valid(nonce)
    assert await w.call(f"DPoP {token}", w.proof(token, nonce=nonce))


async def test_stale_nonce_is_refused_with_a_fresh_one(autojump_clock: object) -> None:
    w = OAuthWorld()
    old = w.nonces.current()
    await trio.sleep(60)
    assert w.nonces.is_valid(old)  # previous window still accepted
    await trio.sleep(120)
    token = w.token()
    failure = await w.fails(f"DPoP {token}", w.proof(token, nonce=old))
    assert failure.reason == "dpop_nonce" and failure.headers["DPoP-Nonce"] != old
    assert not w.nonces.is_valid("forged-nonce")


async def test_bearer_token_without_cnf() -> None:
    w = OAuthWorld()
    viewer = await w.call(f"Bearer {w.token(bound=False)}")
    assert viewer is not None and viewer.method == "oauth" and viewer.dpop_nonce is None


async def test_bound_token_sent_as_bearer_needs_dpop() -> None:
    w = OAuthWorld()
    assert (await w.fails(f"Bearer {w.token()}")).reason == "dpop_required"


async def test_unbound_token_sent_with_dpop_scheme() -> None:
    w = OAuthWorld()
    token = w.token(bound=False)
    assert (await w.fails(f"DPoP {token}", w.proof(token))).reason == "dpop_unbound"


@pytest.mark.parametrize(
    ("proof_kw", "reason"),
    [
        ({"htm": "POST"}, "dpop_htm_mismatch"),
        ({"htm": "get"}, "dpop_htm_mismatch"),
        ({"htu": "https://coves.test/xrpc/other.method"}, "dpop_htu_mismatch"),
        ({"htu": "https://evil.test/xrpc/social.coves.test.whoami"}, "dpop_htu_mismatch"),
        ({"ath": "AAAA"}, "dpop_ath_mismatch"),
        ({"iat": 1_000_000}, "dpop_iat"),
        ({"jti": MISSING}, "dpop_malformed"),
        ({"header": {"typ": "JWT"}}, "dpop_bad_type"),
        ({"header": {"alg": "ES256K"}}, "dpop_bad_alg"),
    ],
)
async def test_proof_mismatches(proof_kw: dict[str, Any], reason: str) -> None:
    w = OAuthWorld()
    token = w.token()
    failure = await w.fails(f"DPoP {token}", w.proof(token, **proof_kw))
    assert failure.reason == reason
    assert failure.www_authenticate.startswith("DPoP")


async def test_htu_is_normalised() -> None:
    w = OAuthWorld()
    token = w.token()
    htu = "HTTPS://Coves.TEST:443/xrpc/social.coves.test.whoami?x=1#frag"
    assert await w.call(f"DPoP {token}", w.proof(token, htu=htu))
    assert normalize_htu("https://u:p@coves.test/x") is None


async def test_proof_for_another_token_and_by_another_key() -> None:
    w = OAuthWorld()
    token = w.token()
    other = w.token()
    assert (await w.fails(f"DPoP {token}", w.proof(other))).reason == "dpop_ath_mismatch"
    stranger = PrivateKey.generate("p256")
    assert (await w.fails(f"DPoP {token}", w.proof(token, key=stranger))).reason == (
        "dpop_jkt_mismatch"
    )


async def test_reused_proof_is_refused() -> None:
    w = OAuthWorld()
    token = w.token()
    proof = w.proof(token)
    assert await w.call(f"DPoP {token}", proof)
    assert (await w.fails(f"DPoP {token}", proof)).reason == "dpop_replayed"


async def test_missing_multiple_and_private_key_proofs() -> None:
    w = OAuthWorld()
    token = w.token()
    assert (await w.fails(f"DPoP {token}")).reason == "dpop_missing"
    two = f"{w.proof(token)}, {w.proof(token)}"
    assert (await w.fails(f"DPoP {token}", two)).reason == "dpop_malformed"
    private = {**tokens.public_jwk(w.client_key), "d": "AAAA"}
    bad = w.proof(token, header={"jwk": private})
    assert (await w.fails(f"DPoP {token}", bad)).reason == "dpop_bad_key"
    tampered = w.proof(token)
    head, _body, sig = tampered.split(".")
    forged_body = w.proof(token, htm="GET").split(".")[1]
    assert (await w.fails(f"DPoP {token}", f"{head}.{forged_body}.{sig}")).reason == (
        "dpop_bad_signature"
    )


@pytest.mark.parametrize(
    ("token_kw", "reason"),
    [
        ({"iss": "https://evil.test"}, "unknown_issuer"),
        ({"aud": "did:web:other.test"}, "bad_audience"),
        ({"scope": "transition:generic"}, "bad_scope"),
        ({"sub": "alice"}, "malformed"),
        ({"exp": 1000}, "expired"),
        ({"nbf": 99_999_999_999}, "not_yet_valid"),
        ({"kid": "nope"}, "unknown_key"),
        ({"header": {"typ": "JWT"}}, "bad_type"),
    ],
)
async def test_token_failures(token_kw: dict[str, Any], reason: str) -> None:
    w = OAuthWorld()
    token = w.token(**token_kw)
    failure = await w.fails(f"DPoP {token}", w.proof(token))
    assert failure.reason == reason
    assert failure.www_authenticate.startswith("DPoP")


async def test_unknown_issuer_is_never_fetched() -> None:
    w = OAuthWorld()
    token = w.token(iss="https://evil.test")
    await w.fails(f"DPoP {token}", w.proof(token))
    assert not any("evil.test" in url for url in w.base.net.requests)


async def test_token_signed_by_an_unpublished_key() -> None:
    w = OAuthWorld()
    token = tokens.access_token(
        PrivateKey.generate("p256"), KID, iss=ISSUER, sub=ALICE, aud=SERVICE_AUD
    )
    assert (await w.fails(f"Bearer {token}")).reason == "bad_signature"


async def test_jwks_cached_for_an_hour_and_refetched_on_rotation(autojump_clock: object) -> None:
    w = OAuthWorld()
    assert await w.call(f"Bearer {w.token(bound=False)}")
    assert await w.call(f"Bearer {w.token(bound=False)}")
    assert w.jwks.fetches == 1
    await trio.sleep(60)
    w.server_key, w.kid = PrivateKey.generate("p256"), "key-2"  # issuer rotates keys
    assert await w.call(f"Bearer {w.token(bound=False)}")  # unknown kid → one refetch
    assert w.jwks.fetches == 2
    assert (await w.fails(f"Bearer {w.token(bound=False, kid='key-9')}")).reason == ("unknown_key")
    assert w.jwks.fetches == 2  # unknown kids cannot force refetches back to back
    await trio.sleep(3601)
    assert await w.call(f"Bearer {w.token(bound=False)}")
    assert w.jwks.fetches == 3


async def test_oauth_not_configured() -> None:
    base = World()
    auth = CovesAuthenticator(base.service_auth)
    w = OAuthWorld()
    token = w.token()
    req = AuthInput("GET", URL, NSID, {"authorization": f"DPoP {token}", "dpop": w.proof(token)})
    with trio.fail_after(5), pytest.raises(AuthFailure) as info:
        await auth.authenticate(req)
    assert info.value.reason == "unknown_issuer"
