from __future__ import annotations

from typing import Any

import pytest
import trio

from coves.atproto.keys import PrivateKey
from coves.auth.base import AuthFailure
from coves.base64url import b64url_decode, b64url_encode
from tests.auth.helpers import ALICE, NSID, SERVICE_AUD, SERVICE_DID, World, request
from tests.support import tokens
from tests.support.tokens import MISSING


async def reason_for(world: World, token: str, nsid: str = NSID) -> str:
    with trio.fail_after(5), pytest.raises(AuthFailure) as info:
        await world.authenticator().authenticate(request(f"Bearer {token}", nsid))
    assert info.value.www_authenticate.startswith("Bearer")
    return info.value.reason


@pytest.mark.parametrize("curve", ["k256", "p256"])
@pytest.mark.parametrize("aud", [SERVICE_DID, SERVICE_AUD])
async def test_valid_service_auth_is_accepted(curve: str, aud: str) -> None:
    world = World(alice_key=PrivateKey.generate(curve))  # type: ignore[arg-type]
    token = tokens.service_auth(world.alice_key, ALICE, aud, NSID)
    with trio.fail_after(5):
        viewer = await world.authenticator().authenticate(request(f"Bearer {token}"))
    assert viewer is not None
    assert (viewer.did, viewer.method) == (ALICE, "service_auth")


async def test_legacy_iss_fragment_and_legacy_key_form() -> None:
    world = World()
    world.net.add_plc(ALICE, world.alice_key, "alice.example.com", legacy_key=True)
    token = tokens.service_auth(world.alice_key, ALICE + "#atproto", SERVICE_AUD, NSID)
    with trio.fail_after(5):
        viewer = await world.authenticator().authenticate(request(f"Bearer {token}"))
    assert viewer is not None and viewer.did == ALICE


async def test_high_s_signature_is_accepted() -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    head, body, sig = token.split(".")
    raw = b64url_decode(sig)
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(raw[32:], "big")
    assert s <= order // 2  # the signer emits low-S; flipping gives the high-S twin
    high = f"{head}.{body}.{b64url_encode(raw[:32] + (order - s).to_bytes(32, 'big'))}"
    with trio.fail_after(5):
        viewer = await world.authenticator().authenticate(request(f"Bearer {high}"))
    assert viewer is not None and viewer.did == ALICE


async def test_no_header_is_anonymous() -> None:
    with trio.fail_after(5):
        assert await World().authenticator().authenticate(request(None)) is None


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": MISSING}, "malformed"),
        ({"iat": MISSING}, "malformed"),
        ({"jti": MISSING}, "malformed"),
        ({"iss": "not-a-did"}, "malformed"),
        ({"aud": "did:web:other.example"}, "bad_audience"),
        ({"aud": SERVICE_DID + "#other_service"}, "bad_audience"),
        ({"lxm": "social.coves.other.method"}, "bad_lxm"),
        ({"lxm": MISSING}, "bad_lxm"),
    ],
)
async def test_bad_claims(claims: dict[str, Any], reason: str) -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID, **claims)
    assert await reason_for(world, token) == reason


async def test_expired_not_yet_valid_and_too_long_lived() -> None:
    world = World()
    from coves import clock

    now = int(clock.wall_now())
    key = world.alice_key
    expired = tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, iat=now - 200, exp=now - 100)
    assert await reason_for(world, expired) == "expired"
    future = tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, iat=now + 600, exp=now + 660)
    assert await reason_for(world, future) == "not_yet_valid"
    nbf = tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, nbf=now + 600)
    assert await reason_for(world, nbf) == "not_yet_valid"
    long = tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, lifetime=3600)
    assert await reason_for(world, long) == "too_long_lived"
    # within the skew allowance: expired 10 s ago is still accepted
    skewed = tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, iat=now - 70, exp=now - 10)
    with trio.fail_after(5):
        assert await world.authenticator().authenticate(request(f"Bearer {skewed}"))


@pytest.mark.parametrize("typ", ["at+jwt", "refresh+jwt", "dpop+jwt", "jwt+other"])
async def test_wrong_typ(typ: str) -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID, header={"typ": typ})
    expected = "unknown_issuer" if typ == "at+jwt" else "bad_type"  # at+jwt goes to OAuth
    assert await reason_for(world, token) == expected


async def test_missing_typ_is_rejected() -> None:
    world = World()
    claims = tokens.service_auth_claims(ALICE, SERVICE_AUD, NSID)
    token = tokens.compact({"alg": "ES256K"}, claims, world.alice_key)
    assert await reason_for(world, token) == "bad_type"


async def test_alg_none_and_hs256_are_rejected() -> None:
    world = World()
    claims = tokens.service_auth_claims(ALICE, SERVICE_AUD, NSID)
    assert await reason_for(world, tokens.unsigned({"typ": "JWT", "alg": "none"}, claims)) == (
        "bad_alg"
    )
    hs = tokens.hs256({"typ": "JWT", "alg": "HS256"}, claims, b"secret")
    assert await reason_for(world, hs) == "bad_alg"


async def test_alg_that_does_not_match_the_key_curve() -> None:
    world = World()  # k256 key
    claims = tokens.service_auth_claims(ALICE, SERVICE_AUD, NSID)
    token = tokens.compact({"typ": "JWT", "alg": "ES256"}, claims, world.alice_key)
    assert await reason_for(world, token) == "bad_signature"


async def test_tampered_payload_fails_signature() -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    head, _body, sig = token.split(".")
    forged_claims = tokens.service_auth_claims(ALICE, SERVICE_AUD, NSID, jti="forged")
    forged = tokens.unsigned({"typ": "JWT", "alg": "ES256K"}, forged_claims).split(".")[1]
    assert await reason_for(world, f"{head}.{forged}.{sig}") == "bad_signature"


async def test_signature_by_another_key_fails_after_one_refetch() -> None:
    world = World()
    token = tokens.service_auth(PrivateKey.generate("k256"), ALICE, SERVICE_AUD, NSID)
    await world.resolver.document(ALICE)
    before = len(world.net.requests)
    assert await reason_for(world, token) == "bad_signature"
    assert len(world.net.requests) == before + 1  # exactly one forced refresh


async def test_key_rotation_refetches_and_succeeds() -> None:
    world = World()
    with trio.fail_after(5):
        await world.resolver.document(ALICE)  # cache the old key
        new_key = PrivateKey.generate("p256")
        world.net.add_plc(ALICE, new_key, "alice.example.com")
        token = tokens.service_auth(new_key, ALICE, SERVICE_AUD, NSID)
        viewer = await world.authenticator().authenticate(request(f"Bearer {token}"))
    assert viewer is not None and viewer.did == ALICE


async def test_replayed_jti_is_rejected() -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    with trio.fail_after(5):
        assert await world.authenticator().authenticate(request(f"Bearer {token}"))
    assert await reason_for(world, token) == "replayed"


async def test_replay_cache_forgets_after_the_token_lifetime(autojump_clock: object) -> None:
    from coves.auth.replay import ReplayCache

    cache = ReplayCache(capacity=3)
    assert not cache.seen_before("a", 60)
    assert cache.seen_before("a", 60)
    await trio.sleep(61)
    assert not cache.seen_before("a", 60)
    for key in "bcde":
        cache.seen_before(key, 60)
    assert len(cache) == 3


async def test_unknown_issuer() -> None:
    world = World()
    stranger = "did:plc:cccccccccccccccccccccccc"
    token = tokens.service_auth(world.alice_key, stranger, SERVICE_AUD, NSID)
    assert await reason_for(world, token) == "unknown_issuer"
    world.net.add_plc(stranger, None, None)  # a document without a signing key
    await world.resolver.purge(stranger)
    token = tokens.service_auth(world.alice_key, stranger, SERVICE_AUD, NSID)
    assert await reason_for(world, token) == "unknown_issuer"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer not-a-jwt", "Bearer a.b.c"],
)
async def test_malformed_headers(header: str) -> None:
    with trio.fail_after(5), pytest.raises(AuthFailure) as info:
        await World().authenticator().authenticate(request(header))
    assert info.value.reason in {"malformed", "bad_scheme"}


async def test_skip_verify_accepts_unverified_tokens() -> None:
    world = World()
    token = tokens.service_auth(PrivateKey.generate(), ALICE, "did:web:else", "x.y.z")
    with trio.fail_after(5):
        viewer = await world.authenticator(skip_verify=True).authenticate(
            request(f"Bearer {token}")
        )
    assert viewer is not None and (viewer.did, viewer.method) == (ALICE, "unverified")


async def test_typ_is_case_insensitive() -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID, header={"typ": "jwt"})
    with trio.fail_after(5):
        assert await world.authenticator().authenticate(request(f"Bearer {token}"))


async def test_kid_selects_the_verification_method() -> None:
    world = World()
    labeler = PrivateKey.generate("p256")
    doc = world.net.plc[ALICE]
    doc["verificationMethod"].append(
        {
            "id": "#atproto_label",
            "type": "Multikey",
            "controller": ALICE,
            "publicKeyMultibase": labeler.public().multikey(),
        }
    )
    auth = world.authenticator()

    async def viewer_for(token: str) -> Any:
        with trio.fail_after(5):
            return await auth.authenticate(request(f"Bearer {token}"))

    key = world.alice_key
    assert await viewer_for(
        tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, header={"kid": "#atproto"})
    )
    assert await viewer_for(
        tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, header={"kid": f"{ALICE}#atproto"})
    )
    assert await viewer_for(
        tokens.service_auth(labeler, ALICE, SERVICE_AUD, NSID, header={"kid": "#atproto_label"})
    )
    assert await viewer_for(
        tokens.service_auth(labeler, ALICE + "#atproto_label", SERVICE_AUD, NSID)
    )
    # the labeler key does not sign as #atproto, nor the repo key as #atproto_label
    wrong = tokens.service_auth(labeler, ALICE, SERVICE_AUD, NSID)
    assert await reason_for(world, wrong) == "bad_signature"
    other = tokens.service_auth(
        key, ALICE, SERVICE_AUD, NSID, header={"kid": "did:plc:cccccccccccccccccccccccc#atproto"}
    )
    assert await reason_for(world, other) == "malformed"
    missing = tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, header={"kid": "#nope"})
    assert await reason_for(world, missing) == "unknown_issuer"
