"""ECDSA verification of atproto's raw r||s signatures, on both curves.

secp256k1 goes through libsecp256k1 (coincurve), P-256 through OpenSSL; both
must agree with OpenSSL's answer on valid, high-S, tampered and malformed input.
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from coves.atproto.keys import _ORDER, Curve, PrivateKey

MESSAGE = b"the bytes a commit or a JWT signs"


def _openssl(key: PrivateKey, message: bytes, signature: bytes) -> bool:
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.public().key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("curve", ["k256", "p256"])
def test_low_and_high_s_and_tampering(curve: Curve) -> None:
    key = PrivateKey.generate(curve)
    public = key.public()
    low = key.sign(MESSAGE)
    order = _ORDER[curve]
    s = int.from_bytes(low[32:], "big")
    assert s <= order // 2
    high = low[:32] + (order - s).to_bytes(32, "big")
    assert public.verify(MESSAGE, low) and _openssl(key, MESSAGE, low)
    assert public.verify(MESSAGE, high) and _openssl(key, MESSAGE, high)
    assert not public.verify(MESSAGE, high, allow_high_s=False)
    assert not public.verify(MESSAGE + b"!", low)
    assert not PrivateKey.generate(curve).public().verify(MESSAGE, low)
    forged = low[:31] + bytes([low[31] ^ 1]) + low[32:]
    assert not public.verify(MESSAGE, forged) and not _openssl(key, MESSAGE, forged)
    assert not public.verify(MESSAGE, low[:63])
    assert not public.verify(MESSAGE, b"\x00" * 64)
    assert not public.verify(MESSAGE, b"\xff" * 64)
