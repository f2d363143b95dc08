"""atproto public keys: multibase/multicodec encodings and raw r||s signatures.

Two encodings appear in DID documents: ``Multikey`` (``z`` + base58btc of a
multicodec varint + compressed point) and the legacy
``EcdsaSecp256k1VerificationKey2019`` / ``EcdsaSecp256r1VerificationKey2019``
(``z`` + base58btc of the raw uncompressed point, no codec), which the
reference PLC server still serves. Both curves are used: P-256 (ES256) and
secp256k1 (ES256K).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import coincurve
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

Curve = Literal["p256", "k256"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

# multicodec varints
P256_PUB = bytes([0x80, 0x24])  # 0x1200
K256_PUB = bytes([0xE7, 0x01])  # 0xe7
P256_PRIV = bytes([0x86, 0x26])  # 0x1306
K256_PRIV = bytes([0x81, 0x26])  # 0x1301

JWT_ALG: dict[Curve, str] = {"p256": "ES256", "k256": "ES256K"}
_CURVES: dict[Curve, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "k256": ec.SECP256K1()}
_ORDER: dict[Curve, int] = {
    "p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "k256": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}


class KeyError_(ValueError):
    """A key string that is not a supported atproto public key."""


def b58encode(data: bytes) -> str:
    num = int.from_bytes(data, "big")
    out = ""
    while num:
        num, rem = divmod(num, 58)
        out = _B58[rem] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(text: str) -> bytes:
    num = 0
    for char in text:
        try:
            num = num * 58 + _B58_INDEX[char]
        except KeyError:
            raise KeyError_(f"invalid base58 character {char!r}") from None
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


@dataclass(frozen=True)
class PublicKey:
    curve: Curve
    key: ec.EllipticCurvePublicKey

    @property
    def jwt_alg(self) -> str:
        return JWT_ALG[self.curve]

    def compressed(self) -> bytes:
        return self.key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)

    def multikey(self) -> str:
        prefix = P256_PUB if self.curve == "p256" else K256_PUB
        return "z" + b58encode(prefix + self.compressed())

    def did_key(self) -> str:
        return "did:key:" + self.multikey()

    def verify(self, message: bytes, signature: bytes, *, allow_high_s: bool = True) -> bool:
        """Verify a raw 64-byte r||s ECDSA-SHA256 signature (atproto's form)."""
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        order = _ORDER[self.curve]
        if not (0 < r < order and 0 < s < order):
            return False
        if not allow_high_s and s > order // 2:
            return False
        if self.curve == "k256":
            # libsecp256k1 verifies about 8x faster than OpenSSL's generic curve
            # code (70 µs against 590 µs here), which decides the firehose's
            # rate with FIREHOSE_VERIFY=true. It accepts only low-S signatures;
            # (r, s) is valid exactly when (r, n − s) is.
            low_s = min(s, order - s)
            return bool(
                _secp256k1(self.compressed()).verify(encode_dss_signature(r, low_s), message)
            )
        try:
            self.key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@lru_cache(maxsize=4096)
def _secp256k1(compressed: bytes) -> coincurve.PublicKey:
    return coincurve.PublicKey(compressed)


@dataclass(frozen=True)
class PrivateKey:
    curve: Curve
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, curve: Curve = "k256") -> PrivateKey:
        return cls(curve, ec.generate_private_key(_CURVES[curve]))

    @classmethod
    def from_hex(cls, text: str, curve: Curve = "k256") -> PrivateKey:
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise KeyError_("private key must be hex") from None
        if len(raw) != 32:
            raise KeyError_("private key must be 32 bytes")
        try:
            return cls(curve, ec.derive_private_key(int.from_bytes(raw, "big"), _CURVES[curve]))
        except ValueError:
            raise KeyError_("private key is out of range for the curve") from None

    def to_hex(self) -> str:
        return self.key.private_numbers().private_value.to_bytes(32, "big").hex()

    def public(self) -> PublicKey:
        return PublicKey(self.curve, self.key.public_key())

    def sign(self, message: bytes, *, low_s: bool = True) -> bytes:
        """ECDSA-SHA256 as raw r||s, normalised to low-S like atproto signers."""
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
        order = _ORDER[self.curve]
        if low_s and s > order // 2:
            s = order - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _point(curve: Curve, data: bytes) -> PublicKey:
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[curve], data)
    except ValueError:
        raise KeyError_("not a valid point on the curve") from None
    return PublicKey(curve, key)


def parse_multikey(value: str) -> PublicKey:
    """Decode ``z...`` Multikey (multicodec-prefixed compressed point)."""
    if not value.startswith("z"):
        raise KeyError_("multibase must be base58btc ('z')")
    raw = b58decode(value[1:])
    if raw.startswith(P256_PUB):
        return _point("p256", raw[2:])
    if raw.startswith(K256_PUB):
        return _point("k256", raw[2:])
    raise KeyError_("unsupported multicodec (want p256 or secp256k1 public key)")


def parse_did_key(value: str) -> PublicKey:
    if not value.startswith("did:key:"):
        raise KeyError_("not a did:key")
    return parse_multikey(value.removeprefix("did:key:"))


LEGACY_TYPES: dict[str, Curve] = {
    "EcdsaSecp256k1VerificationKey2019": "k256",
    "EcdsaSecp256r1VerificationKey2019": "p256",
}


def parse_verification_method(method_type: str, multibase: str) -> PublicKey:
    """A DID-document verification method in either supported form."""
    if method_type == "Multikey":
        return parse_multikey(multibase)
    curve = LEGACY_TYPES.get(method_type)
    if curve is None:
        raise KeyError_(f"unsupported verification method type {method_type!r}")
    if not multibase.startswith("z"):
        raise KeyError_("multibase must be base58btc ('z')")
    raw = b58decode(multibase[1:])
    # Legacy keys are raw points; some writers still add the multicodec prefix.
    for prefix in (P256_PUB, K256_PUB):
        if raw.startswith(prefix) and len(raw) in (35, 67):
            raw = raw[2:]
    return _point(curve, raw)


def parse_p256_private(value: str) -> PrivateKey:
    """A P-256 private key from 64 hex digits or multibase (``z`` + p256-priv multicodec).

    The multibase form is how atproto tooling prints private keys; hex is
    accepted because it is what operators get from ``openssl``-style tools.
    """
    text = value.strip()
    if text.startswith("z"):
        raw = b58decode(text[1:])
        if not raw.startswith(P256_PRIV) or len(raw) != 34:
            raise KeyError_("multibase key is not a P-256 private key")
        return PrivateKey.from_hex(raw[2:].hex(), "p256")
    return PrivateKey.from_hex(text, "p256")


def p256_private_multibase(key: PrivateKey) -> str:
    if key.curve != "p256":
        raise KeyError_("not a P-256 key")
    return "z" + b58encode(P256_PRIV + bytes.fromhex(key.to_hex()))
