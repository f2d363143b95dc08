"""Images clients send inline (base64): decoded strictly, typed from their bytes.

The declared MIME type is only a claim; what the bytes are decides. Three
signatures cover what profile pictures may be (the lexicon accepts PNG,
JPEG and WebP), so a dependency would add nothing.
"""

from __future__ import annotations

import base64
import binascii

from coves.errors import XRPCError

SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/jpeg", b"\xff\xd8\xff", 0),
)


def sniff(data: bytes) -> str | None:
    for mime, magic, offset in SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_image(
    encoded: object, declared: object, *, field: str, max_bytes: int, accept: tuple[str, ...]
) -> tuple[bytes, str]:
    """(bytes, sniffed MIME type) of a base64 image; 400 when it is not an acceptable one."""
    if not isinstance(encoded, str) or not encoded:
        raise XRPCError(400, "InvalidRequest", f"{field} must be base64 image data")
    if len(encoded) > (max_bytes + 2) // 3 * 4 + 4:
        raise XRPCError(413, "BlobTooLarge", f"{field} is larger than {max_bytes} bytes")
    text = encoded.split(",", 1)[1] if encoded.startswith("data:") else encoded
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise XRPCError(400, "InvalidRequest", f"{field} is not valid base64") from None
    if len(data) > max_bytes:
        raise XRPCError(413, "BlobTooLarge", f"{field} is larger than {max_bytes} bytes")
    mime = sniff(data)
    if mime is None or mime not in accept:
        raise XRPCError(
            400, "InvalidImage", f"{field} must be one of {', '.join(accept)} (by its content)"
        )
    if declared is not None and declared != mime:
        raise XRPCError(400, "InvalidImage", f"{field} is {mime}, not {declared}")
    return data, mime
