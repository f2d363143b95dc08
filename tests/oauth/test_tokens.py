"""Sealed session tokens: authentic, bound to their secret, expiring."""

from __future__ import annotations

import base64

import pytest
import trio

from coves import clock
from coves.oauth.tokens import PREFIX, InvalidSessionToken, SessionTokens, is_session_token
from coves.secrets import Secret, SecretBox, sealed_key_id

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


GARBAGE = ["", "cvs2.", "cvs2.!!!!", "cvs2." + "A" * 10, "eyJhbGciOi.x.y", "cvs2." + "A" * 2000,
           "cvs1.", "cvs1." + "A" * 10, "cvs9." + "A" * 60]  # fmt: skip


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


# -- one sealing mechanism, and rotation ----------------------------------------------


def _blob(token: str) -> bytes:
    body = token.split(".", 1)[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_tokens_are_secretbox_envelopes_naming_their_key() -> None:
    tokens = SessionTokens(SECRET)
    blob = _blob(tokens.issue(DID, "sid-1"))
    assert sealed_key_id(blob) == tokens.key_id
    # The box key is derived from the secret: the raw secret opens nothing.
    with pytest.raises(ValueError):
        SecretBox(SECRET).open(blob, context="coves session token")


def test_rotation_keeps_tokens_of_old_secrets_valid() -> None:
    old_token = SessionTokens(OTHER).issue(DID, "sid-old")
    rotated = SessionTokens(SECRET, old_secrets=[OTHER])
    assert rotated.open(old_token).session_id == "sid-old"
    new_token = rotated.issue(DID, "sid-new")
    assert sealed_key_id(_blob(new_token)) == SessionTokens(SECRET).key_id
    assert SessionTokens(SECRET).open(new_token).session_id == "sid-new"
    # Once the old secret is dropped, its tokens stop opening; the old secret
    # alone never opens a token sealed with the new one.
    with pytest.raises(InvalidSessionToken) as info:
        SessionTokens(SECRET).open(old_token)
    assert info.value.reason == "bad_seal"
    with pytest.raises(InvalidSessionToken):
        SessionTokens(OTHER).open(new_token)


def _legacy_token(secret: Secret, claims: dict[str, object]) -> str:
    """A token as Coves issued them before key ids (cvs1.: nonce || AES-GCM, HKDF key)."""
    import os

    import orjson
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"coves session token v1"
    ).derive(base64.b64decode(secret.reveal()))
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(claims), b"coves session token")
    return "cvs1." + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def test_tokens_issued_before_key_ids_still_open_until_they_expire() -> None:
    now = int(clock.wall_now())
    legacy = _legacy_token(OTHER, {"did": DID, "sid": "s1", "iat": now, "exp": now + 600})
    assert is_session_token(legacy)
    assert SessionTokens(OTHER).open(legacy).session_id == "s1"
    assert SessionTokens(SECRET, old_secrets=[OTHER]).open(legacy).did == DID
    with pytest.raises(InvalidSessionToken) as info:
        SessionTokens(SECRET).open(legacy)
    assert info.value.reason == "bad_seal"
    stale = _legacy_token(OTHER, {"did": DID, "sid": "s1", "iat": now - 99, "exp": now - 9})
    with pytest.raises(InvalidSessionToken) as info:
        SessionTokens(OTHER).open(stale)
    assert info.value.reason == "expired"
