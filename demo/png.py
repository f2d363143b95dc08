"""Small PNG pictures for the seeded avatars, banners and post images.

Written with the standard library (zlib and the PNG chunk format): the demo
needs a few recognisable images, not an imaging library.
"""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def gradient(
    width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]
) -> bytes:
    """An RGB PNG fading from ``top`` to ``bottom``, with a lighter diagonal band."""
    rows = []
    for y in range(height):
        t = y / max(1, height - 1)
        base = [round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)]
        row = bytearray([0])  # filter: none
        for x in range(width):
            band = 40 if abs((x + y) % 64 - 32) < 6 else 0
            row += bytes(min(255, c + band) for c in base)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
