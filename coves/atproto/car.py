"""CAR v1 files (the repository export format) and the CIDs that key their blocks.

The firehose ships each commit's blocks as a CAR; ``com.atproto.sync.getRepo``
and ``getRecord`` answer with one. Blocks are kept as raw bytes, keyed by the
binary CID, and only the ones a caller asks for are decoded, so a commit whose
records we do not index costs one pass over the section headers.

No maintained PyPI package reads CARs lazily with block verification (see
docs/firehose.md): the format is a varint-framed list of (CID, bytes), so it
is read here; DAG-CBOR decoding itself is cbrrr's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cbrrr

SHA2_256 = 0x12
DAG_CBOR = 0x71
RAW = 0x55


class CarError(ValueError):
    """Bytes that are not a well-formed CAR, or a block that does not match its CID."""


def read_varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at ``offset``: (value, offset after it)."""
    value = shift = 0
    while True:
        if offset >= len(data):
            raise CarError("truncated varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise CarError("varint too long")


def cid_length(data: bytes | memoryview, offset: int) -> int:
    """Length of the binary CIDv1 starting at ``offset``."""
    start = offset
    version, offset = read_varint(data, offset)
    if version != 1:
        raise CarError(f"unsupported CID version {version}")
    _codec, offset = read_varint(data, offset)
    _hash, offset = read_varint(data, offset)
    size, offset = read_varint(data, offset)
    end = offset + size
    if end > len(data):
        raise CarError("truncated CID")
    return end - start


def cid_bytes(value: object) -> bytes:
    """The binary form of a decoded CID link (cbrrr.CID)."""
    if isinstance(value, cbrrr.CID):
        return value.cid_bytes
    raise CarError("expected a CID link")


def cid_text(raw: bytes) -> str:
    return cbrrr.CID(raw).encode()


def verify_block(cid: bytes, block: bytes) -> None:
    """Raise unless ``block`` hashes to ``cid`` (sha2-256 CIDv1, the only form atproto uses)."""
    _version, offset = read_varint(cid, 0)
    _codec, offset = read_varint(cid, offset)
    code, offset = read_varint(cid, offset)
    size, offset = read_varint(cid, offset)
    if code != SHA2_256 or size != 32:
        raise CarError("unsupported multihash (sha2-256 expected)")
    if hashlib.sha256(block).digest() != cid[offset : offset + size]:
        raise CarError(f"block does not match its CID {cid_text(cid)}")


@dataclass
class Car:
    roots: list[bytes]
    blocks: dict[bytes, bytes]

    def get(self, cid: bytes, *, verify: bool = True) -> bytes | None:
        block = self.blocks.get(cid)
        if block is not None and verify:
            verify_block(cid, block)
        return block

    def decode(self, cid: bytes, *, atjson: bool = False, verify: bool = True) -> object:
        """The DAG-CBOR value of block ``cid``; None when the CAR does not hold it."""
        block = self.get(cid, verify=verify)
        if block is None:
            return None
        try:
            return cbrrr.decode_dag_cbor(block, atjson_mode=atjson)
        except (cbrrr.CbrrrDecodeError, ValueError) as exc:
            raise CarError(f"block {cid_text(cid)} is not DAG-CBOR: {exc}") from exc


def read_car(data: bytes) -> Car:
    """Split a CAR v1 into its roots and blocks (nothing decoded, nothing hashed yet)."""
    view = memoryview(data)
    size, offset = read_varint(view, 0)
    end = offset + size
    if size == 0 or end > len(view):
        raise CarError("truncated CAR header")
    try:
        header = cbrrr.decode_dag_cbor(bytes(view[offset:end]))
    except (cbrrr.CbrrrDecodeError, ValueError) as exc:
        raise CarError(f"CAR header is not DAG-CBOR: {exc}") from exc
    if not isinstance(header, dict) or header.get("version") != 1:
        raise CarError("not a CAR v1 header")
    roots_value = header.get("roots")
    if not isinstance(roots_value, list):
        raise CarError("CAR header has no roots")
    roots = [cid_bytes(root) for root in roots_value]
    blocks: dict[bytes, bytes] = {}
    offset = end
    while offset < len(view):
        size, offset = read_varint(view, offset)
        end = offset + size
        if size == 0 or end > len(view):
            raise CarError("truncated CAR section")
        length = cid_length(view, offset)
        if length >= size:
            raise CarError("CAR section shorter than its CID")
        blocks[bytes(view[offset : offset + length])] = bytes(view[offset + length : end])
        offset = end
    return Car(roots, blocks)


def write_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_car(roots: list[bytes], blocks: dict[bytes, bytes]) -> bytes:
    """A CAR v1 of ``blocks`` (used by tests and the benchmark to build real frames)."""
    header = cbrrr.encode_dag_cbor({"version": 1, "roots": [cbrrr.CID(r) for r in roots]})
    parts = [write_varint(len(header)), header]
    for cid, block in blocks.items():
        parts += [write_varint(len(cid) + len(block)), cid, block]
    return b"".join(parts)


def block_cid(block: bytes, codec: int = DAG_CBOR) -> bytes:
    """The CIDv1 (sha2-256) of a block."""
    prefix = (
        cbrrr.CID.CIDV1_DAG_CBOR_SHA256_32_PFX
        if codec == DAG_CBOR
        else (cbrrr.CID.CIDV1_RAW_SHA256_32_PFX)
    )
    return prefix + hashlib.sha256(block).digest()
