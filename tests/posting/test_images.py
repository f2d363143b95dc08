from __future__ import annotations

import pytest

from coves.lexicon import LexiconRegistry
from coves.media.images import (
    IMAGE_UPLOAD_MAX_BYTES,
    ImageLimits,
    ImageRejected,
    blob_limits,
    inspect_image,
)
from tests.support.images import make_image, noisy_png

ALL = ImageLimits(frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}), 10_000_000)
NO_GIF = ImageLimits(frozenset({"image/jpeg", "image/png", "image/webp"}), 1_000_000)


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_formats_are_sniffed_with_their_dimensions(fmt: str, mime: str) -> None:
    data = make_image(fmt, (64, 48))
    info = inspect_image(data, ALL)
    assert (info.mime, info.width, info.height, info.size) == (mime, 64, 48, len(data))
    assert info.aspect_ratio == {"width": 64, "height": 48}


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize(("orientation", "shown"), [(1, (64, 48)), (6, (48, 64)), (8, (48, 64))])
def test_exif_orientation_gives_the_displayed_aspect_ratio(
    fmt: str, orientation: int, shown: tuple[int, int]
) -> None:
    info = inspect_image(make_image(fmt, (64, 48), orientation=orientation), ALL)
    assert (info.width, info.height) == shown


def test_gif_is_refused_where_the_lexicon_does_not_accept_it() -> None:
    with pytest.raises(ImageRejected) as err:
        inspect_image(make_image("GIF"), NO_GIF)
    assert err.value.error == "InvalidImage"
    assert "image/png" in err.value.message


@pytest.mark.parametrize(
    "data",
    [
        make_image("BMP"),
        b"<html><body>not an image</body></html>",
        b"GIF89a",  # a magic number and nothing behind it
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    ],
)
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(ImageRejected) as err:
        inspect_image(data, ALL)
    assert err.value.error == "InvalidImage"
    assert err.value.status == 400


def test_a_declared_type_is_not_trusted_a_png_stays_a_png() -> None:
    # The sniffer never sees a client's Content-Type: only the bytes decide.
    assert inspect_image(make_image("PNG"), ALL).mime == "image/png"


def test_truncated_and_corrupted_pngs_are_refused() -> None:
    data = make_image("PNG", (30, 30))
    for bad in (data[: len(data) // 2], data[:-5], data[:33] + b"XXXX" + data[37:]):
        with pytest.raises(ImageRejected) as err:
            inspect_image(bad, ALL)
        assert err.value.error == "InvalidImage"


def test_empty_and_oversized_images_are_refused() -> None:
    with pytest.raises(ImageRejected) as err:
        inspect_image(b"", ALL)
    assert err.value.error == "InvalidImage"
    big = noisy_png(1_100_000)
    assert inspect_image(big, ALL).mime == "image/png"
    with pytest.raises(ImageRejected) as err:
        inspect_image(big, NO_GIF)
    assert (err.value.error, err.value.status) == ("BlobTooLarge", 413)


def test_limits_come_from_the_lexicons() -> None:
    lexicons = LexiconRegistry.load()
    images = blob_limits(lexicons.document("social.coves.embed.images"), "image", "image")
    assert images.accept == ALL.accept
    assert images.max_bytes == 10_000_000
    # The upload procedure's transport cap is the lexicon's limit, not a second one.
    assert images.max_bytes == IMAGE_UPLOAD_MAX_BYTES
    thumb = blob_limits(lexicons.document("social.coves.embed.external"), "external", "thumb")
    assert thumb.accept == NO_GIF.accept
    assert thumb.max_bytes == 1_000_000
    with pytest.raises(LookupError):
        blob_limits(lexicons.document("social.coves.embed.images"), "image", "alt")
