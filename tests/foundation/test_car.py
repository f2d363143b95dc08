"""CAR reading and CID text: the fast paths agree with the general ones, and
finding a block by content accepts only bytes that hash to the CID."""

from __future__ import annotations

import hashlib
import os
import random

import cbrrr
import pytest

from coves.atproto.car import (
    DAG_CBOR,
    RAW,
    CarError,
    block_cid,
    cid_length,
    cid_text,
    find_block,
    read_car,
    read_varint,
    write_car,
    write_varint,
)
from tests.support.events import POST, VOTE, did, post_record, vote_record
from tests.support.fake_repo import FakeRepo, Write

# A CIDv1 with a sha2-512 multihash (0x13, 64 bytes): valid, but not the fast path's form.
SHA512_CID = bytes([1, DAG_CBOR, 0x13, 64]) + hashlib.sha512(b"x").digest()


def slow_read(data: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """The CAR read with nothing but the general varint and CID readers."""
    size, offset = read_varint(data, 0)
    header = cbrrr.decode_dag_cbor(data[offset : offset + size])
    roots = [root.cid_bytes for root in header["roots"]]
    offset += size
    blocks = {}
    while offset < len(data):
        size, offset = read_varint(data, offset)
        length = cid_length(data, offset)
        blocks[data[offset : offset + length]] = data[offset + length : offset + size]
        offset += size
    return roots, blocks


def mixed_blocks(rnd: random.Random) -> dict[bytes, bytes]:
    """dag-cbor and raw blocks whose sections need one-, two- and three-byte lengths."""
    blocks: dict[bytes, bytes] = {}
    for size in (1, 50, 91, 92, 93, 127, 128, 500, 16_000, 16_347, 16_348, 70_000):
        body = rnd.randbytes(size)
        blocks[block_cid(body, rnd.choice((DAG_CBOR, RAW)))] = body
    blocks[SHA512_CID] = b"not checked by read_car"
    return blocks


@pytest.mark.parametrize("seed", range(5))
def test_read_car_agrees_with_the_general_reader(seed: int) -> None:
    rnd = random.Random(seed)
    blocks = mixed_blocks(rnd)
    roots = [next(iter(blocks))]
    data = write_car(roots, blocks)
    car = read_car(data)
    assert (car.roots, car.blocks) == slow_read(data)
    assert car.blocks == blocks


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda d: d[:-1], "truncated CAR section"),
        (lambda d: d + b"\x05\x01\x71", "truncated CAR section"),
        (lambda d: d + write_varint(10) + bytes([1, DAG_CBOR, 0x12, 32]) + b"abcdef", "CID"),
        (lambda d: d + write_varint(36) + bytes([1, DAG_CBOR, 0x12, 32]) + b"a" * 32, "shorter"),
        (lambda d: d + write_varint(68) + SHA512_CID, "shorter"),
        (lambda d: d + b"\x00", "truncated CAR section"),
        (lambda d: d + b"\xff" * 12, "varint"),
    ],
)
def test_malformed_sections_are_refused(mangle: object, problem: str) -> None:
    body = b"block"
    data = write_car([block_cid(body)], {block_cid(body): body})
    with pytest.raises(CarError, match=problem):
        read_car(mangle(data))  # type: ignore[operator]


def test_cid_text_is_multibase_base32() -> None:
    for size in [*range(0, 80), *([36] * 100), 300]:
        raw = os.urandom(size)
        assert cid_text(raw) == cbrrr.CID(raw).encode()
    # Well-formed CIDs (the ones cbrrr renders itself), sha2-256 and longer digests.
    for prefix, digest in [(b"\x01\x71\x12\x20", 32), (b"\x01\x55\x12\x20", 32)] * 50 + [
        (b"\x01\x71\x13\x40", 64),
        (b"\x01\x71\x12\x80\x02", 256),
    ]:
        raw = prefix + os.urandom(digest)
        assert cid_text(raw) == cbrrr.CID(raw).encode()
    known = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    assert cid_text(cbrrr.CID.decode(known).cid_bytes) == known


def test_find_block_finds_each_record_of_a_real_commit() -> None:
    repo = FakeRepo(did("alice"))
    for i in range(40):  # a tree deep enough that commits carry proof nodes
        repo.commit([Write("create", VOTE, f"3kvote{i:07d}", vote_record(f"at://x/y/{i}"))])
    commit = repo.commit(
        [
            Write("create", POST, "3kpost0000001", post_record(did("c"), did("alice"))),
            Write("create", VOTE, "3kvote9999999", vote_record("at://x/y/z")),
        ]
    )
    data = commit.car()
    whole = read_car(data)
    assert len(whole.blocks) > 3
    for cid, block in whole.blocks.items():
        assert find_block(data, cid) == block


def test_find_block_passes_over_references_and_refuses_tampered_bytes() -> None:
    record = cbrrr.encode_dag_cbor({"text": "hello"})
    cid = block_cid(record)
    # A node that links to the record comes first: the CID's bytes appear inside it.
    node = cbrrr.encode_dag_cbor({"e": [{"v": cbrrr.CID(cid)}]})
    node_cid = block_cid(node)
    data = write_car([node_cid], {node_cid: node, cid: record})
    assert data.find(cid) < data.rfind(cid)  # referenced before its own section
    assert find_block(data, cid) == record
    # Only the reference, no block: nothing.
    assert find_block(write_car([node_cid], {node_cid: node}), cid) is None
    # The block's bytes changed: they no longer hash to the CID.
    tampered = data.replace(b"hello", b"jello")
    assert find_block(tampered, cid) is None
    assert read_car(tampered).blocks[cid] == record.replace(b"hello", b"jello")  # not hashed


@pytest.mark.parametrize("size", [1, 91, 92, 127, 128, 16_347, 16_348, 300_000])
def test_find_block_reads_every_section_length(size: int) -> None:
    body = random.Random(size).randbytes(size)
    cid = block_cid(body)
    filler = b"f" * 10
    data = write_car([cid], {block_cid(filler): filler, cid: body})
    assert find_block(data, cid) == body


def test_find_block_refuses_hashes_it_cannot_check() -> None:
    with pytest.raises(CarError, match="sha2-256"):
        find_block(write_car([SHA512_CID], {SHA512_CID: b"x"}), SHA512_CID)
