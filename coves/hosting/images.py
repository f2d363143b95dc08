"""Community avatars and banners: base64 from the client, type sniffed from the bytes.

The mobile client sends ``avatarBlob`` (base64) with ``avatarMimeType``; the
declared type is never trusted. The bytes are decoded strictly, size-checked
and identified by their signature (PNG, JPEG, WebP: the types the profile
record's lexicon accepts), and the PDS gets the sniffed type.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from coves.errors import XRPCError

AVATAR_MAX_BYTES = 1_000_000
BANNER_MAX_BYTES = 2_000_000
ACCEPTED = frozenset({"image/png", "image/jpeg", "image/webp"})


@dataclass(frozen=True)
class Image:
    data: bytes
    mime: str


def sniff(data: bytes) -> str | None:
    """The image type the bytes are, by signature, among the accepted ones."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 24:
        return "image/png"
    if data.startswith(b"\xff\xd8\xff") and len(data) > 4:
        return "image/jpeg"
    if len(data) > 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_image(field: str, encoded: str, declared: str | None, max_bytes: int) -> Image:
    """``field`` (``avatarBlob``...) decoded and checked; 400/413 XRPC errors otherwise."""
    if declared is not None and declared.lower() not in ACCEPTED:
        raise XRPCError(
            400, "InvalidImage", f"{field}: {declared} is not one of {', '.join(sorted(ACCEPTED))}"
        )
    if len(encoded) > (max_bytes + 2) // 3 * 4 + 4:
        raise XRPCError(413, "BlobTooLarge", f"{field}: at most {max_bytes} bytes are allowed")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise XRPCError(400, "InvalidImage", f"{field}: not valid base64") from None
    if not data:
        raise XRPCError(400, "InvalidImage", f"{field}: the image is empty")
    if len(data) > max_bytes:
        raise XRPCError(
            413,
            "BlobTooLarge",
            f"{field}: the image is {len(data)} bytes; at most {max_bytes} are allowed",
        )
    mime = sniff(data)
    if mime is None:
        raise XRPCError(
            400,
            "InvalidImage",
            f"{field}: the bytes are not a PNG, JPEG or WebP image",
        )
    return Image(data, mime)
