"""Avatars and banners of profile records (a community's, a user's): base64 from the client.

Community create/update and ``actor.updateProfile`` take ``avatarBlob`` (base64)
with ``avatarMimeType``, as the mobile client sends them; the declared type is
never trusted. The text is decoded strictly here; what the bytes are (format,
size, structure) is decided by the one image inspector
(``coves.media.images.inspect_image``) against the profile record's blob
limits (its lexicon: PNG, JPEG or WebP; 1 MB avatar, 2 MB banner), and the PDS
gets the sniffed type.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from coves.errors import XRPCError
from coves.media.images import ImageLimits, ImageRejected, blob_limits, inspect_image


@dataclass(frozen=True)
class Image:
    data: bytes
    mime: str


COMMUNITY_PROFILE = "social.coves.community.profile"
_limits: dict[tuple[str, str], ImageLimits] = {}


def profile_limits(field: str, nsid: str = COMMUNITY_PROFILE) -> ImageLimits:
    """The limits of profile record ``nsid`` (community or actor) for ``field``
    (``avatar`` or ``banner``): one source for the sizes and types, its lexicon."""
    if (nsid, field) not in _limits:
        from coves.lexicon import LexiconRegistry

        profile = LexiconRegistry.load().document(nsid)
        record = {"id": profile["id"], "defs": {"main": profile["defs"]["main"]["record"]}}
        _limits[nsid, field] = blob_limits(record, "main", field)
    return _limits[nsid, field]


def decode_image(field: str, encoded: str, declared: str | None, limits: ImageLimits) -> Image:
    """``field`` (``avatarBlob``...) decoded and inspected; 400/413 XRPC errors otherwise.

    CPU-bound for large images: run it in a worker thread."""
    if declared is not None and declared.lower() not in limits.accept:
        raise XRPCError(
            400, "InvalidImage", f"{field}: {declared} is not one of {limits.describe()}"
        )
    if len(encoded) > (limits.max_bytes + 2) // 3 * 4 + 4:
        raise XRPCError(
            413, "BlobTooLarge", f"{field}: at most {limits.max_bytes} bytes are allowed"
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise XRPCError(400, "InvalidImage", f"{field}: not valid base64") from None
    try:
        info = inspect_image(data, limits)
    except ImageRejected as exc:
        raise XRPCError(exc.status, exc.error, f"{field}: {exc.message}") from None
    return Image(data, info.mime)
