"""Signed repository commits (spec `repository`, version 3).

A commit is the DAG-CBOR map ``{did, version, data, rev, prev, sig}``; the
signature covers the DAG-CBOR encoding of the same map without ``sig``,
hashed with SHA-256, as a low-S raw r||s ECDSA signature by the repo's
``#atproto`` key.
"""

from __future__ import annotations

from dataclasses import dataclass

import cbrrr

from coves.atproto.car import Car, CarError, cid_bytes
from coves.atproto.keys import PublicKey


@dataclass(frozen=True)
class SignedCommit:
    did: str
    rev: str
    data: bytes  # the MST root CID
    unsigned: bytes  # the bytes the signature covers
    sig: bytes

    def verify(self, key: PublicKey) -> bool:
        return key.verify(self.unsigned, self.sig, allow_high_s=False)


def read_commit(car: Car, cid: bytes) -> SignedCommit:
    value = car.decode(cid)
    if value is None:
        raise CarError("the commit block is missing from the CAR")
    if not isinstance(value, dict):
        raise CarError("the commit is not a map")
    did, rev, sig, version = (
        value.get("did"),
        value.get("rev"),
        value.get("sig"),
        value.get("version"),
    )
    if not isinstance(did, str) or not isinstance(rev, str) or not isinstance(sig, bytes):
        raise CarError("the commit lacks did, rev or sig")
    if version != 3:
        raise CarError(f"unsupported commit version {version!r}")
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    return SignedCommit(
        did, rev, cid_bytes(value.get("data")), cbrrr.encode_dag_cbor(unsigned), sig
    )
