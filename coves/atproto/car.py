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

import base64
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
    """The CID's string form: multibase ``b``, lower-case RFC 4648 base32, no padding.

    The same string as ``cbrrr.CID(raw).encode()``, which goes through
    ``base64.b32encode`` (pure Python before 3.13: about 10 µs a CID, a sixth of
    the firehose path's per-event decoding). cbrrr's C decoder renders a CID
    link as this text in atjson mode, so the CID is wrapped as a DAG-CBOR link
    (tag 42, a byte string led by the identity multibase prefix) and decoded:
    about 0.5 µs. Bytes cbrrr does not take for a CID go the standard way.
    """
    size = len(raw) + 1
    if size < 24:
        head = bytes((0x40 + size,))
    elif size < 256:
        head = bytes((0x58, size))
    else:
        head = b"\x59" + size.to_bytes(2, "big")
    try:
        link = cbrrr.decode_dag_cbor(b"\xd8\x2a" + head + b"\x00" + raw, atjson_mode=True)
    except (cbrrr.CbrrrDecodeError, ValueError):
        link = None
    if isinstance(link, dict) and isinstance(text := link.get("$link"), str):
        return text
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def verify_block(cid: bytes, block: bytes) -> None:
    """Raise unless ``block`` hashes to ``cid`` (sha2-256 CIDv1, the only form atproto uses)."""
    if hashlib.sha256(block).digest() != _sha256_digest(cid):
        raise CarError(f"block does not match its CID {cid_text(cid)}")


def decode_block(cid: bytes, block: bytes, *, atjson: bool = False) -> object:
    """The DAG-CBOR value of a block already checked against ``cid``."""
    try:
        return cbrrr.decode_dag_cbor(block, atjson_mode=atjson)
    except (cbrrr.CbrrrDecodeError, ValueError) as exc:
        raise CarError(f"block {cid_text(cid)} is not DAG-CBOR: {exc}") from exc


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
        return None if block is None else decode_block(cid, block, atjson=atjson)


def read_car(data: bytes) -> Car:
    """Split a CAR v1 into its roots and blocks (nothing decoded, nothing hashed yet).

    Every firehose commit that touches our collections comes through here, so
    the common sections (a one- or two-byte length, a 36-byte sha2-256 CIDv1)
    take a fast path; anything else goes through the general varint reader.
    """
    size, offset = read_varint(data, 0)
    end = offset + size
    if size == 0 or end > len(data):
        raise CarError("truncated CAR header")
    try:
        header = cbrrr.decode_dag_cbor(data[offset:end])
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
    total = len(data)
    while offset < total:
        first = data[offset]
        if first < 0x80:
            size, offset = first, offset + 1
        elif offset + 1 < total and data[offset + 1] < 0x80:
            size, offset = (first & 0x7F) | (data[offset + 1] << 7), offset + 2
        else:
            size, offset = read_varint(data, offset)
        end = offset + size
        if size == 0 or end > total:
            raise CarError("truncated CAR section")
        if data.startswith(_CBOR_SHA256, offset) or data.startswith(_RAW_SHA256, offset):
            length = _SHA256_CID_LENGTH
            if offset + length > total:
                raise CarError("truncated CID")
        else:
            length = cid_length(data, offset)
        if length >= size:
            raise CarError("CAR section shorter than its CID")
        blocks[data[offset : offset + length]] = data[offset + length : end]
        offset = end
    return Car(roots, blocks)


def find_block(data: bytes, cid: bytes) -> bytes | None:
    """The block of ``cid`` in the CAR ``data``, found by its content; None if absent.

    Indexing a firehose commit without ``FIREHOSE_VERIFY`` needs only the record
    blocks, not the proof path around them (typically a dozen MST nodes), so
    instead of splitting every section this looks for the CID's bytes and takes
    the block after them only when it hashes to the CID. Content addressing is
    what makes that safe: bytes that hash to the CID are that record wherever
    they sit, and an occurrence that is not a section (an MST node linking to
    the record) fails the hash and is passed over. Checking the commit's
    signature and proofs still reads the whole CAR (:func:`read_car`).
    """
    digest = _sha256_digest(cid)
    start = data.find(cid)
    while start > 0:
        for size in _section_sizes(data, start):
            end = start + size
            if len(cid) < size and end <= len(data):
                block = data[start + len(cid) : end]
                if hashlib.sha256(block).digest() == digest:
                    return block
        start = data.find(cid, start + 1)
    return None


def _sha256_digest(cid: bytes) -> bytes:
    if len(cid) == _SHA256_CID_LENGTH and (
        cid.startswith(_CBOR_SHA256) or cid.startswith(_RAW_SHA256)
    ):
        return cid[4:]
    _version, offset = read_varint(cid, 0)
    _codec, offset = read_varint(cid, offset)
    code, offset = read_varint(cid, offset)
    size, offset = read_varint(cid, offset)
    if code != SHA2_256 or size != 32 or offset + size != len(cid):
        raise CarError("unsupported multihash (sha2-256 expected)")
    return cid[offset:]


def _section_sizes(data: bytes, start: int) -> list[int]:
    """The section lengths a one-, two- or three-byte varint ending just before
    ``start`` would give (a block is at most a few MB)."""
    sizes = []
    if start >= 1 and data[start - 1] < 0x80:
        sizes.append(data[start - 1])
        if start >= 2 and data[start - 2] >= 0x80:
            sizes.append((data[start - 2] & 0x7F) | (data[start - 1] << 7))
            if start >= 3 and data[start - 3] >= 0x80:
                sizes.append(
                    (data[start - 3] & 0x7F)
                    | ((data[start - 2] & 0x7F) << 7)
                    | (data[start - 1] << 14)
                )
    return sizes


# CIDv1, dag-cbor or raw, sha2-256, 32-byte digest: what atproto repositories hold.
_CBOR_SHA256 = bytes([1, DAG_CBOR, SHA2_256, 32])
_RAW_SHA256 = bytes([1, RAW, SHA2_256, 32])
_SHA256_CID_LENGTH = 4 + 32


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
