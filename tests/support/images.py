"""Real image files made in memory for upload and sniffing tests."""

from __future__ import annotations

import io

from PIL import Image


def make_image(
    fmt: str = "PNG", size: tuple[int, int] = (40, 20), *, orientation: int | None = None
) -> bytes:
    """An image of ``size`` pixels encoded as ``fmt`` (JPEG, PNG, WEBP, GIF, BMP)."""
    image = Image.new("RGB", size, (200, 30, 90))
    out = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()


def noisy_png(min_bytes: int) -> bytes:
    """A valid PNG of at least ``min_bytes`` (random pixels do not compress)."""
    import os

    side = int((min_bytes / 3) ** 0.5) + 8
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    return out.getvalue()
