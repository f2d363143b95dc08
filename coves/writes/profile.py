"""social.coves.actor.updateProfile: the caller's social.coves.actor.profile record.

Fields not sent keep their current value (the current record is read from
the PDS, and the write swaps on its CID); an empty ``displayName`` or
``bio`` clears it. Images arrive base64 in the call, as the mobile client
sends them, and are decoded as community images are (``coves.media.profile_images``:
typed from their bytes, size-checked) before they are uploaded to the
caller's repo. Decoding a few megabytes of base64 and parsing the image is
CPU work: it runs in a worker thread so the event loop keeps serving others.
"""

from __future__ import annotations

from typing import Any

import trio

from coves.errors import XRPCError
from coves.lexicon.registry import LexiconRegistry
from coves.media.profile_images import Image, decode_image, profile_limits
from coves.pds import PdsConflict, PdsNotFound
from coves.writes.records import now_datetime, ref_answer, validated
from coves.writes.repo import UserRepo

PROFILE = "social.coves.actor.profile"
# The largest body updateProfile can legitimately carry: both images (at the
# profile lexicon's maxSize: 1 MB and 2 MB) in base64, and the text fields.
MAX_BODY = (1_000_000 + 2_000_000) * 4 // 3 + 64 * 1024


async def update_profile(
    lexicons: LexiconRegistry | None, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    images: dict[str, Image] = {}
    for name in ("avatar", "banner"):
        encoded = body.get(f"{name}Blob")
        if isinstance(encoded, str):
            declared = body.get(f"{name}MimeType")
            images[name] = await trio.to_thread.run_sync(
                decode_image,
                f"{name}Blob",
                encoded,
                declared if isinstance(declared, str) else None,
                profile_limits(name, PROFILE),
            )
    try:
        current = await repo.get(PROFILE, "self")
        record: dict[str, Any] = dict(current.value)
        swap: str | None = current.cid
    except PdsNotFound:
        record, swap = {"createdAt": now_datetime()}, None
    record["$type"] = PROFILE
    for field, source in (("displayName", "displayName"), ("description", "bio")):
        value = body.get(source)
        if isinstance(value, str):
            if value.strip():
                record[field] = value.strip()
            else:
                record.pop(field, None)
    # Check the text before uploading anything.
    validated(lexicons, PROFILE, {k: v for k, v in record.items() if k not in images})
    for name, image in images.items():
        record[name] = await repo.upload_blob(image.data, image.mime)
    validated(lexicons, PROFILE, record)
    try:
        written = await repo.put(PROFILE, "self", record, swap_record=swap, creating=swap is None)
    except PdsConflict:
        raise XRPCError(
            409, "ConcurrentModification", "the profile changed meanwhile; retry"
        ) from None
    return ref_answer(written)
