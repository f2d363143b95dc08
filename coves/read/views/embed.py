"""Embed views: a record's embed as clients render it, the one place they are built.

Records carry embeds by their record type (``social.coves.embed.images``) with
blob references; the clients switch on the view type
(``social.coves.embed.images#view``) and need URLs. Every embed kind the
lexicons define has its view here; an embed of another kind keeps its type,
with blob references replaced by URLs (``BlobUrls.rewrite``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coves.read.views.blobs import BlobUrls, blob_cid

IMAGES = "social.coves.embed.images"
EXTERNAL = "social.coves.embed.external"
VIDEO = "social.coves.embed.video"
POST = "social.coves.embed.post"

Builder = Callable[[Mapping[str, Any], BlobUrls, str, "str | None"], "dict[str, Any] | None"]


def embed_view(embed: Any, blobs: BlobUrls, did: str, pds: str | None) -> dict[str, Any] | None:
    """The view of ``embed`` (stored in ``did``'s repo), or None when nothing is left
    to show (e.g. every image's URL was unbuildable)."""
    if not isinstance(embed, Mapping):
        return None
    kind = embed.get("$type")
    builder = _BUILDERS.get(kind.removesuffix("#main")) if isinstance(kind, str) else None
    if builder is None:
        rewritten = blobs.rewrite(dict(embed), did, pds)
        return rewritten if isinstance(rewritten, dict) else None
    return builder(embed, blobs, did, pds)


def _aspect_ratio(source: Mapping[str, Any], target: dict[str, Any]) -> None:
    ratio = source.get("aspectRatio")
    if isinstance(ratio, Mapping):
        width, height = ratio.get("width"), ratio.get("height")
        if type(width) is int and type(height) is int and width > 0 and height > 0:
            target["aspectRatio"] = {"width": width, "height": height}


def _image(image: Any, blobs: BlobUrls, did: str, pds: str | None) -> dict[str, Any] | None:
    """images#viewImage: thumbnail and full-size URLs of one image."""
    if not isinstance(image, Mapping):
        return None
    blob = image.get("image")
    thumb = blobs.url(blob, did, pds, "thumb")
    fullsize = blobs.url(blob, did, pds, "fullsize")
    if thumb is None or fullsize is None:
        return None
    view: dict[str, Any] = {"thumb": thumb, "fullsize": fullsize}
    alt = image.get("alt")
    view["alt"] = alt if isinstance(alt, str) else ""
    _aspect_ratio(image, view)
    return view


def _images(embed: Mapping[str, Any], blobs: BlobUrls, did: str, pds: str | None) -> Any:
    items = embed.get("images")
    shown = [
        view
        for image in (items if isinstance(items, list) else [])
        if (view := _image(image, blobs, did, pds)) is not None
    ]
    if not shown:
        return None
    return {"$type": f"{IMAGES}#view", "images": shown}


_EXTERNAL_TEXT = ("uri", "title", "description", "domain", "embedType", "provider")


def _external(embed: Mapping[str, Any], blobs: BlobUrls, did: str, pds: str | None) -> Any:
    card = embed.get("external")
    if not isinstance(card, Mapping) or not isinstance(card.get("uri"), str):
        return None
    view: dict[str, Any] = {}
    for name in _EXTERNAL_TEXT:
        value = card.get(name)
        if isinstance(value, str):
            view[name] = value
    thumb = card.get("thumb")
    if blob_cid(thumb) is not None:
        url = blobs.url(thumb, did, pds, "thumb")
        if url is not None:
            view["thumb"] = url
    images = card.get("images")
    if isinstance(images, list):
        gallery = [v for image in images if (v := _image(image, blobs, did, pds)) is not None]
        if gallery:
            view["images"] = gallery
    total = card.get("totalCount")
    if type(total) is int and total >= 0:
        view["totalCount"] = total
    sources = card.get("sources")
    if isinstance(sources, list):
        kept = [_source(source) for source in sources]
        if any(kept):
            view["sources"] = [source for source in kept if source]
    return {"$type": f"{EXTERNAL}#view", "external": view}


def _source(source: Any) -> dict[str, str] | None:
    if not isinstance(source, Mapping) or not isinstance(source.get("uri"), str):
        return None
    return {k: v for k in ("uri", "title", "domain") if isinstance(v := source.get(k), str)}


def _video(embed: Mapping[str, Any], blobs: BlobUrls, did: str, pds: str | None) -> Any:
    blob = embed.get("video")
    url = blobs.url(blob, did, pds, "video")
    cid = blob_cid(blob)
    if url is None or cid is None:
        return None
    view: dict[str, Any] = {"$type": f"{VIDEO}#view", "cid": cid, "video": url}
    alt = embed.get("alt")
    if isinstance(alt, str):
        view["alt"] = alt
    _aspect_ratio(embed, view)
    return view


def _post(embed: Mapping[str, Any], blobs: BlobUrls, did: str, pds: str | None) -> Any:
    ref = embed.get("post")
    if not isinstance(ref, Mapping):
        return None
    uri, cid = ref.get("uri"), ref.get("cid")
    if not isinstance(uri, str) or not isinstance(cid, str):
        return None
    return {"$type": f"{POST}#view", "post": {"uri": uri, "cid": cid}}


_BUILDERS: dict[str, Builder] = {
    IMAGES: _images,
    EXTERNAL: _external,
    VIDEO: _video,
    POST: _post,
}
