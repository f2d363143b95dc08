"""Microbenchmark: cost of authenticating one request, against a bare signature check.

The floor for any JWT verification is one ECDSA verify; everything else
(parsing, claim checks, the replay cache, the cached DID-document lookup)
is overhead on top. Measured in the same run, with the issuer's document
already cached (the steady state): service auth with ES256K and ES256, and
an OAuth access token + DPoP proof (two ECDSA verifies: token and proof).
Coves' own session token (signed in through Coves) is one AES-GCM open plus
the session lookup; the lookup is an in-memory stand-in here (in production
it is one primary-key read of ``oauth_sessions``), so the figure is the
token's own cost against a bare AES-GCM open.

    .venv/bin/python bench/auth_verify.py [--n 2000]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coves.atproto.keys import PrivateKey
from coves.auth.authenticator import CovesAuthenticator
from coves.auth.base import AuthInput
from coves.auth.session import SessionVerifier
from coves.oauth.tokens import SessionTokens
from coves.secrets import Secret
from tests.auth.helpers import ALICE, NSID, SERVICE_AUD, URL, World
from tests.auth.test_oauth_dpop import OAuthWorld
from tests.support import tokens


def bare_verify(key: PrivateKey, n: int) -> float:
    message = b"x" * 300
    signature = key.sign(message)
    public = key.public()
    start = time.perf_counter()
    for _ in range(n):
        public.verify(message, signature)
    return (time.perf_counter() - start) / n


async def service_auth(curve: str, n: int) -> float:
    world = World(alice_key=PrivateKey.generate(curve))  # type: ignore[arg-type]
    auth = world.authenticator()
    minted = [tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID) for _ in range(n)]
    await world.resolver.document(ALICE)  # steady state: the document is cached
    start = time.perf_counter()
    for token in minted:
        req = AuthInput("GET", URL, NSID, {"authorization": f"Bearer {token}"})
        await auth.authenticate(req)
    return (time.perf_counter() - start) / n


async def oauth_dpop(n: int) -> float:
    w = OAuthWorld()
    pairs = []
    for _ in range(n):
        token = w.token()
        pairs.append((token, w.proof(token)))
    await w.call(f"DPoP {pairs[0][0]}", pairs[0][1])  # warm the JWKS cache
    start = time.perf_counter()
    for token, proof in pairs[1:]:
        req = AuthInput("GET", URL, NSID, {"authorization": f"DPoP {token}", "dpop": proof})
        await w.auth.authenticate(req)
    return (time.perf_counter() - start) / (n - 1)


def bare_open(n: int) -> float:
    key = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    sealed = key.encrypt(nonce, b"x" * 90, b"aad")
    start = time.perf_counter()
    for _ in range(n):
        key.decrypt(nonce, sealed, b"aad")
    return (time.perf_counter() - start) / n


async def session_token(n: int) -> float:
    tokens = SessionTokens(Secret(base64.b64encode(os.urandom(32)).decode()))
    row = {"did": ALICE, "expires_at": datetime.now(UTC) + timedelta(days=1)}

    async def lookup(session_id: str) -> dict[str, object]:
        return row

    verifier = SessionVerifier(tokens, lookup, {"https://coves.test"})
    auth = CovesAuthenticator(World().service_auth, sessions=verifier)
    minted = [tokens.issue(ALICE, f"s{i}") for i in range(n)]
    start = time.perf_counter()
    for token in minted:
        req = AuthInput("GET", URL, NSID, {"authorization": f"Bearer {token}"})
        await auth.authenticate(req)
    return (time.perf_counter() - start) / n


async def main(n: int) -> None:
    print(f"cores={os.cpu_count()} n={n} (shared machine: figures are noisy)")
    for curve in ("k256", "p256"):
        base = bare_verify(PrivateKey.generate(curve), n)  # type: ignore[arg-type]
        full = await service_auth(curve, n)
        print(
            f"service auth {curve}: {full * 1e6:8.1f} µs/request ({1 / full:8.0f}/s); "
            f"bare verify {base * 1e6:8.1f} µs; ratio {full / base:.2f}x"
        )
    base = bare_verify(PrivateKey.generate("p256"), n)
    full = await oauth_dpop(n)
    print(
        f"oauth+dpop p256:  {full * 1e6:8.1f} µs/request ({1 / full:8.0f}/s); "
        f"bare verify {base * 1e6:8.1f} µs; ratio {full / base:.2f}x (two verifies)"
    )
    base = bare_open(n)
    full = await session_token(n)
    print(
        f"session token:    {full * 1e6:8.1f} µs/request ({1 / full:8.0f}/s); "
        f"bare AES-GCM open {base * 1e6:8.1f} µs; ratio {full / base:.2f}x (lookup excluded)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    trio.run(main, parser.parse_args().n)
