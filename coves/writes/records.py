"""Small shared pieces of the write procedures: record building and answers."""

from __future__ import annotations

from typing import Any

from coves import clock
from coves.atproto.syntax import AtUri, format_datetime, is_valid_cid, parse_record_uri
from coves.errors import XRPCError
from coves.lexicon import LexiconValidationError
from coves.lexicon.registry import LexiconRegistry
from coves.pds import Written
from coves.read.rules import Why


def now_datetime() -> str:
    return format_datetime(clock.utcnow())


def validated(lexicons: LexiconRegistry | None, collection: str, record: dict[str, Any]) -> None:
    """Check a record against its lexicon before anything is sent to the PDS."""
    if lexicons is None:
        return
    try:
        lexicons.validate_record(collection, record)
    except LexiconValidationError as exc:
        raise XRPCError(400, "InvalidRequest", f"record: {exc}") from None


def record_uri_param(value: Any, name: str) -> AtUri:
    if not isinstance(value, str):
        raise XRPCError(400, "InvalidRequest", f"{name} must be an AT-URI")
    try:
        return parse_record_uri(value)
    except ValueError as exc:
        raise XRPCError(400, "InvalidRequest", f"{name}: {exc}") from None


def strong_ref(value: Any, name: str, *, cid_required: bool = True) -> tuple[AtUri, str | None]:
    """``{uri, cid}`` (or a bare URI when the CID is optional)."""
    if isinstance(value, str) and not cid_required:
        return record_uri_param(value, name), None
    if not isinstance(value, dict):
        raise XRPCError(400, "InvalidRequest", f"{name} must be {{uri, cid}}")
    uri = record_uri_param(value.get("uri"), f"{name}.uri")
    cid = value.get("cid")
    if cid is None and not cid_required:
        return uri, None
    if not isinstance(cid, str) or not is_valid_cid(cid):
        raise XRPCError(400, "InvalidRequest", f"{name}.cid must be a CID")
    return uri, cid


def ref_answer(written: Written) -> dict[str, Any]:
    return {"uri": written.uri, "cid": written.cid}


def block_answer(uri: str, cid: str | None) -> dict[str, Any]:
    return {"block": {"recordUri": uri, "recordCid": cid}}


def refuse(why: Why | None, not_found: XRPCError) -> None:
    """A write's answer when the read rules withhold its subject from the writer (``why``
    from ``coves.read.targets``; None lets it through). What the reads show is what the
    write says: a block the reads show (``post.get``'s ``blocked`` entries for the
    viewer's own community block, or a user block either way) is 403 ``Blocked``;
    everything else, which the reads answer as not found, is ``not_found``."""
    if why is None:
        return
    if why.blocked_by in ("author", "community"):
        raise XRPCError(403, "Blocked", why.message)
    raise not_found
