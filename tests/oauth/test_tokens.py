"""Sealed session tokens: authentic, bound to their secret, expiring."""

from __future__ import annotations

import base64

import pytest
import trio

from coves.oauth.tokens import PREFIX, InvalidSessionToken, SessionTokens, is_session_token
from coves.secrets import Secret

SECRET = Secret(base64.b64encode(b"t" * 32).decode())
OTHER = Secret(base64.b64encode(b"o" * 32).decode())
DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def test_round_trip_names_did_and_session() -> None:
    tokens = SessionTokens(SECRET)
    token = tokens.issue(DID, "sid-1")
    assert is_session_token(token) and token.startswith(PREFIX)
    assert "." not in token[len(PREFIX) :]  # never mistaken for a JWT
    claims = tokens.open(token)
    assert (claims.did, claims.session_id) == (DID, "sid-1")
    assert claims.expires_at - claims.issued_at == pytest.approx(tokens.ttl, abs=1)


def test_tokens_are_opaque_and_unique() -> None:
    tokens = SessionTokens(SECRET)
    first, second = tokens.issue(DID, "sid-1"), tokens.issue(DID, "sid-1")
    assert first != second
    assert DID not in first and "sid-1" not in first
    assert DID.encode() not in base64.urlsafe_b64decode(first[len(PREFIX) :] + "==")


@pytest.mark.parametrize("position", [0, 11, 12, 40, -1])  # nonce, ciphertext, tag
def test_tampered_token_is_refused(position: int) -> None:
    tokens = SessionTokens(SECRET)
    token = tokens.issue(DID, "sid-1")
    body = token[len(PREFIX) :]
    blob = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    blob[position] ^= 0x01
    forged = PREFIX + base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()
    with pytest.raises(InvalidSessionToken) as info:
        tokens.open(forged)
    assert info.value.reason == "bad_seal"


def test_token_from_another_secret_is_refused() -> None:
    token = SessionTokens(OTHER).issue(DID, "sid-1")
    with pytest.raises(InvalidSessionToken) as info:
        SessionTokens(SECRET).open(token)
    assert info.value.reason == "bad_seal"


GARBAGE = ["", "cvs1.", "cvs1.!!!!", "cvs1." + "A" * 10, "eyJhbGciOi.x.y", "cvs1." + "A" * 2000]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_is_malformed(garbage: str) -> None:
    with pytest.raises(InvalidSessionToken) as info:
        SessionTokens(SECRET).open(garbage)
    assert info.value.reason == "malformed"


async def test_expired_token_is_refused_unless_allowed(autojump_clock: object) -> None:
    tokens = SessionTokens(SECRET, ttl=60)
    token = tokens.issue(DID, "sid-1")
    assert tokens.open(token).session_id == "sid-1"
    await trio.sleep(61)
    with pytest.raises(InvalidSessionToken) as info:
        tokens.open(token)
    assert info.value.reason == "expired"
    assert tokens.open(token, allow_expired=True).did == DID


def test_expiry_never_outlives_the_session() -> None:
    tokens = SessionTokens(SECRET)
    session_ends = tokens.open(tokens.issue(DID, "s")).issued_at + 100
    claims = tokens.open(tokens.issue(DID, "s", not_after=session_ends))
    assert claims.expires_at <= session_ends + 1
