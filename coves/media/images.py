"""What an uploaded image really is: its format sniffed from the bytes, its size
and its displayed aspect ratio, checked against limits taken from the lexicons.

Clients declare a MIME type; nothing trusts it. The bytes are opened with
Pillow restricted to the four formats the lexicons accept, which reads the
container headers only (no pixels are decoded): the format comes from the
magic bytes and the structure behind them, the dimensions from the image
header, and a JPEG or WebP whose EXIF orientation turns it by 90° reports the
width and height a viewer will show. Pillow was chosen over a header-only
reader (``imagesize``) and a magic-number sniffer (``filetype``) because it
does all three (sniffing, dimensions, EXIF orientation) and rejects truncated
or inconsistent headers that the lighter ones pass through. See
``docs/posting.md``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

# Pixels are never decoded, so Pillow's decompression-bomb warning (a global
# warnings filter that is not thread-safe to change per call) is replaced by
# the explicit pixel limit below.
Image.MAX_IMAGE_PIXELS = None

# Pillow format name -> MIME type, for the formats any Coves lexicon accepts.
FORMATS: Mapping[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
# The transport cap of the upload procedure: social.coves.embed.images' maxSize
# (tests check the two agree; the lexicon's value is what is enforced).
IMAGE_UPLOAD_MAX_BYTES = 10_000_000
# The largest image we accept by area: far above any camera (a 200-megapixel
# phone sensor), far below what would make a viewer's decoder fall over.
MAX_PIXELS = 250_000_000
# EXIF orientations that rotate by 90 or 270 degrees (width and height swap).
_TRANSPOSED = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112
_EXIF_FORMATS = frozenset({"image/jpeg", "image/webp"})


class ImageRejected(Exception):
    """The bytes are not an acceptable image; ``error`` is the XRPC error name."""

    def __init__(self, error: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ImageLimits:
    """What one blob field of a lexicon accepts."""

    accept: frozenset[str]  # MIME types
    max_bytes: int

    def describe(self) -> str:
        return ", ".join(sorted(self.accept))


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    size: int  # bytes
    width: int  # as displayed (EXIF orientation applied)
    height: int

    @property
    def aspect_ratio(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height}


def inspect_image(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Sniff ``data`` and check it against ``limits``; raise :class:`ImageRejected`.

    CPU-bound for large PNGs (``verify`` walks every chunk's CRC): callers on
    the event loop run it in a worker thread.
    """
    if not data:
        raise ImageRejected("InvalidImage", "the image is empty")
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "BlobTooLarge",
            f"the image is {len(data)} bytes; at most {limits.max_bytes} are allowed",
            status=413,
        )
    formats = [name for name, mime in FORMATS.items() if mime in limits.accept]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as image:
            mime = FORMATS[str(image.format)]
            width, height = image.size
            orientation = _orientation(image) if mime in _EXIF_FORMATS else 1
        # Structural check without decoding pixels (PNG chunk CRCs, GIF and
        # WebP framing); Pillow requires it on a freshly opened image.
        with Image.open(io.BytesIO(data), formats=formats) as image:
            image.verify()
    except UnidentifiedImageError:
        raise ImageRejected(
            "InvalidImage", f"the bytes are not an image of an accepted type ({limits.describe()})"
        ) from None
    except Exception:  # any parser failure on untrusted bytes is a refusal, not a 500
        raise ImageRejected("InvalidImage", "the image is damaged or truncated") from None
    if width < 1 or height < 1:
        raise ImageRejected("InvalidImage", "the image has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageRejected(
            "InvalidImage", f"the image is {width}x{height} pixels; too large to display"
        )
    if orientation in _TRANSPOSED:
        width, height = height, width
    return ImageInfo(mime=mime, size=len(data), width=width, height=height)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG)
    except Exception:  # a broken EXIF block must not refuse an otherwise fine image
        return 1
    return value if isinstance(value, int) else 1


def blob_limits(lexicon: Mapping[str, Any], definition: str, field: str) -> ImageLimits:
    """The ``accept`` and ``maxSize`` of blob ``field`` in ``definition`` of a lexicon
    document, so limits live in one place: the lexicon the record is checked against."""
    defs = lexicon.get("defs")
    schema = defs.get(definition) if isinstance(defs, Mapping) else None
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    blob = props.get(field) if isinstance(props, Mapping) else None
    if not isinstance(blob, Mapping) or blob.get("type") != "blob":
        raise LookupError(f"{lexicon.get('id')}#{definition}.{field} is not a blob field")
    accept = blob.get("accept")
    max_size = blob.get("maxSize")
    if not isinstance(accept, Iterable) or not isinstance(max_size, int):
        raise LookupError(f"{lexicon.get('id')}#{definition}.{field} needs accept and maxSize")
    mimes = frozenset(str(m) for m in accept)
    unknown = mimes - set(FORMATS.values())
    if unknown:
        raise LookupError(f"no sniffer for {sorted(unknown)}")
    return ImageLimits(accept=mimes, max_bytes=max_size)
