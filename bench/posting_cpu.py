"""Microbenchmark: the CPU a post costs Coves itself, against baselines that any
handling of the same bytes pays.

- Image sniffing (``inspect_image``: format, size, EXIF orientation, structural
  check) of a large JPEG and PNG, against SHA-256 of the same bytes (the floor:
  the PDS hashes every blob into its CID).
- OpenGraph parsing of a page head (512 KB, the most the unfurler reads),
  against decoding the same bytes to text.
- The record checks of a post (content rules + lexicon validation), against
  ``orjson.loads`` of the same record.

Times are this process's CPU time (``time.process_time``), best of three.

    .venv/bin/python bench/posting_cpu.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
from pathlib import Path

import orjson
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lexicon_validate import per_call
from coves.lexicon import LexiconRegistry
from coves.media.images import ImageLimits, inspect_image
from coves.posting.rules import ContentRules, violation
from coves.unfurl.opengraph import decode_html, parse_page

LIMITS = ImageLimits(frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}), 50_000_000)


def photo(fmt: str, size: tuple[int, int]) -> bytes:
    """A photo-like image (noise compresses like a real photo, not like a flat fill)."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()


def page(size: int, *, big_head: bool) -> bytes:
    """A page of ``size`` bytes whose bulk is in <head> (worst case) or <body> (usual)."""
    head = (
        "<!doctype html><html><head><meta charset='utf-8'><title>A story</title>"
        "<meta property='og:title' content='Rivers of Trio'>"
        "<meta property='og:description' content='How structured concurrency works.'>"
        "<meta property='og:image' content='/cover.jpg'><meta property='og:type' content='article'>"
    )
    script = "<script>var x = 1;</script>" * ((size - len(head)) // 27)
    if big_head:
        return (head + script + "</head><body><p>text</p></body></html>").encode()[:size]
    return (head + "</head><body>" + script.replace("script", "p") + "</body></html>").encode()[
        :size
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--side", type=int, default=2000, help="image width (height 3/4)")
    args = parser.parse_args()
    side = args.side
    rows: list[tuple[str, float, str, float]] = []
    for fmt in ("JPEG", "PNG"):
        data = photo(fmt, (side, side * 3 // 4))
        label = f"sniff {fmt} {len(data) / 1e6:.1f} MB"
        rows.append(
            (
                label,
                per_call(lambda d=data: inspect_image(d, LIMITS), args.seconds),
                "sha256",
                per_call(lambda d=data: hashlib.sha256(d).digest(), args.seconds),
            )
        )
    for label, big_head in (
        ("OpenGraph 512 KB, big head", True),
        ("OpenGraph 512 KB, big body", False),
    ):
        html = page(512 * 1024, big_head=big_head)
        rows.append(
            (
                label,
                per_call(
                    lambda h=html: parse_page(decode_html(h, "text/html"), "https://x.test/"),
                    args.seconds,
                ),
                "decode",
                per_call(lambda h=html: h.decode("utf-8"), args.seconds),
            )
        )
    lexicons = LexiconRegistry.load()
    record = {
        "$type": "social.coves.community.post",
        "community": "did:plc:abcdefghijklmnopqrstuvwx",
        "author": "did:plc:bcdefghijklmnopqrstuvwxy",
        "title": "A headline of ordinary length",
        "content": "Body text " * 80,
        "embed": {
            "$type": "social.coves.embed.external",
            "external": {"uri": "https://news.example.com/a", "title": "t", "description": "d"},
        },
        "langs": ["en"],
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    raw = orjson.dumps(record)
    rules = ContentRules(allowed_embeds=frozenset({"external", "images"}))

    def checks() -> None:
        violation(rules, record["embed"])
        lexicons.validate_record("social.coves.community.post", record)

    rows.append(
        (
            "post record checks",
            per_call(checks, args.seconds),
            "orjson.loads",
            per_call(lambda: orjson.loads(raw), args.seconds),
        )
    )
    print(f"posting CPU, {os.cpu_count()} cores, process CPU time, best of 3")
    print(f"{'case':28} {'us/call':>10} {'baseline':>14} {'us/call':>10} {'ratio':>7}")
    for label, cost, base_label, base in rows:
        print(
            f"{label:28} {cost * 1e6:10.1f} {base_label:>14} {base * 1e6:10.1f} {cost / base:7.2f}x"
        )


if __name__ == "__main__":
    main()
