"""Compare the DAG-CBOR libraries PyPI offers, on correctness and speed, for the firehose.

Candidates (install them in a scratch venv; only cbrrr is a Coves dependency):
cbrrr, libipld, dag-cbor (with multiformats), cbor2. Correctness cases: CID
links must stay distinguishable from byte strings, and input that is CBOR but
not DAG-CBOR (keys out of canonical order, duplicate keys, indefinite lengths,
tags other than 42, trailing bytes) must be refused. Speed: decoding real
firehose frames (header + #commit body) and the record blocks of their CARs,
built by the test suite's repository builder.

    /tmp/venv/bin/python bench/dagcbor_libs.py [--frames 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cbrrr

from coves.atproto.car import read_car
from tests.support.fake_repo import FakeRepo, Write, commit_body, encode_frame

CID_TEXT = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
LINK_AND_BYTES = cbrrr.encode_dag_cbor({"a": cbrrr.CID.decode(CID_TEXT), "b": b"\x01\x02"})
NOT_DAG_CBOR = {
    "keys out of order": b"\xa2\x61b\x01\x61a\x02",
    "duplicate keys": b"\xa2\x61a\x01\x61a\x02",
    "indefinite map": b"\xbf\x61a\x01\xff",
    "tag 1 (time)": b"\xc1\x1a\x00\x00\x00\x01",
    "trailing bytes": b"\x01\x02",
    "undefined": b"\xf7",
}


def decoders() -> dict[str, Callable[[bytes], Any]]:
    found: dict[str, Callable[[bytes], Any]] = {"cbrrr": cbrrr.decode_dag_cbor}
    try:
        import libipld

        found["libipld"] = libipld.decode_dag_cbor
    except ImportError:
        pass
    try:
        import dag_cbor

        found["dag-cbor"] = dag_cbor.decode
    except ImportError:
        pass
    try:
        import cbor2

        found["cbor2"] = cbor2.loads
    except ImportError:
        pass
    return found


def correctness(name: str, decode: Callable[[bytes], Any]) -> list[str]:
    notes = []
    value = decode(LINK_AND_BYTES)
    link, raw = value["a"], value["b"]
    if isinstance(link, bytes) and isinstance(raw, bytes):
        notes.append("CID link decoded as bytes: indistinguishable from a byte string")
    for case, data in NOT_DAG_CBOR.items():
        try:
            decode(data)
        except Exception:
            continue
        notes.append(f"accepts non-DAG-CBOR input ({case})")
    return notes


def frames(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        if i % 5 == 0:  # small repositories: a commit's CAR holds a handful of blocks
            repo = FakeRepo(f"did:plc:bench{i}")
        commit = repo.commit(
            [
                Write(
                    "create",
                    "social.coves.community.comment",
                    f"3kcomm{i:07d}",
                    {
                        "reply": {
                            "root": {"uri": "at://did:plc:x/p/1", "cid": CID_TEXT},
                            "parent": {"uri": "at://did:plc:x/p/1", "cid": CID_TEXT},
                        },
                        "content": "some words " * 20,
                        "createdAt": "2026-01-02T03:04:05.000Z",
                    },
                )
            ]
        )
        out.append(encode_frame("#commit", commit_body(commit, i + 1, 1_780_000_000_000_000)))
    return out


def speed(name: str, decode: Callable[[bytes], Any], data: list[bytes]) -> float:
    """Frames/s: header, body, and every block of the commit's CAR."""
    split = [(f[: len(cbrrr.encode_dag_cbor({"op": 1, "t": "#commit"}))], f) for f in data]
    started = time.perf_counter()
    for header, frame in split:
        decode(header)
        body = decode(frame[len(header) :])
        for block in read_car(bytes(body["blocks"])).blocks.values():
            decode(block)
    return len(data) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    data = frames(args.frames)
    print(f"{len(data)} #commit frames, {sum(map(len, data)) // len(data)} bytes each on average")
    for name, decode in decoders().items():
        notes = correctness(name, decode)
        try:
            rate = f"{speed(name, decode, data):,.0f} frames/s"
        except Exception as exc:
            rate = f"cannot decode the frames: {exc!r}"[:120]
        print(f"{name:9s} {rate}")
        for note in notes or ["passes every correctness case"]:
            print(f"          - {note}")


if __name__ == "__main__":
    main()
