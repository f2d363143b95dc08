"""DPoP proofs and client assertions, checked by independent verifiers.

Proofs made with pyjwt are verified by Coves' own hand-written DPoP checks
(coves.auth.oauth, written against RFC 9449 for incoming proofs), and
client assertions by pyjwt's verifier: two implementations have to agree.
"""

from __future__ import annotations

import hashlib

import jwt
import pytest

from coves.auth.base import AuthFailure, AuthInput
from coves.auth.jwk import public_key_from_jwk, thumbprint
from coves.auth.jwt import parse_jwt
from coves.auth.nonces import DpopNonces
from coves.auth.oauth import OAuthTokenVerifier
from coves.base64url import b64url_encode
from coves.oauth.jose import SigningKey, client_assertion, dpop_proof, pkce_pair

URL = "https://pds.example/xrpc/com.atproto.repo.createRecord"


def verifier(nonces: DpopNonces) -> OAuthTokenVerifier:
    return OAuthTokenVerifier(issuers=(), audiences=set(), jwks=None, nonces=nonces)  # type: ignore[arg-type]


def test_dpop_proof_passes_an_independent_rfc9449_check() -> None:
    key = SigningKey.generate()
    nonces = DpopNonces(b"n" * 32)
    proof = dpop_proof(key, "POST", URL + "?x=1#frag", nonce=nonces.current(), access_token="tok")
    parsed = parse_jwt(proof)
    request = AuthInput(http_method="POST", url=URL, nsid="x", headers={})
    jkt = verifier(nonces)._check_proof(parsed, request)
    assert jkt == key.jkt == thumbprint(parsed.header["jwk"])
    assert parsed.payload["htu"] == URL  # query and fragment are not part of htu
    assert parsed.payload["ath"] == b64url_encode(hashlib.sha256(b"tok").digest())
    assert "d" not in parsed.header["jwk"]  # never the private key


def test_proof_without_the_servers_nonce_is_refused_with_a_fresh_one() -> None:
    key = SigningKey.generate()
    nonces = DpopNonces(b"n" * 32)
    proof = parse_jwt(dpop_proof(key, "GET", URL, nonce=None))
    request = AuthInput(http_method="GET", url=URL, nsid="x", headers={})
    with pytest.raises(AuthFailure) as info:
        verifier(nonces)._check_proof(proof, request)
    assert info.value.reason == "dpop_nonce"
    assert info.value.headers["DPoP-Nonce"] == nonces.current()


def test_each_proof_has_its_own_jti() -> None:
    key = SigningKey.generate()
    jtis = {parse_jwt(dpop_proof(key, "GET", URL, nonce="n")).payload["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_client_assertion_verifies_with_the_published_key() -> None:
    key = SigningKey.generate()
    token = client_assertion(
        key, "kid-1", "https://coves.example/oauth-client-metadata.json", "https://pds.example"
    )
    public = public_key_from_jwk(key.public_jwk)
    claims = jwt.decode(token, public.key, algorithms=["ES256"], audience="https://pds.example")
    assert claims["iss"] == claims["sub"] == "https://coves.example/oauth-client-metadata.json"
    assert claims["exp"] - claims["iat"] <= 60
    assert jwt.get_unverified_header(token)["kid"] == "kid-1"


def test_key_round_trips_through_its_sealed_form() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_hex(key.to_hex())
    assert again.public_jwk == key.public_jwk and again.jkt == key.jkt


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier_text, challenge = pkce_pair()
    assert 43 <= len(verifier_text) <= 128
    assert challenge == b64url_encode(hashlib.sha256(verifier_text.encode()).digest())
