"""Identifier syntax from the atproto specs (did, handle, nsid, rkey, tid, at-uri, cid),
and the DNS names Coves itself accepts (community names, host names, domains).

These checks are syntax only: whether a DID resolves or a handle is claimed
is the identity package's business. They are deliberately strict because
stream input is untrusted and every identifier ends up in SQL keys and URLs.
Every check matches the whole value (``fullmatch``): a ``$`` anchor alone also
accepts a trailing newline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
DID_RE = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
HANDLE_RE = re.compile(rf"^({_LABEL}\.)+[a-zA-Z]([a-zA-Z0-9-]{{0,61}}[a-zA-Z0-9])?$")
# A host name: one or more labels (``localhost`` included), at most 253 characters.
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
# A community's name is one label: it becomes the handle ``c-<name>.<instance domain>``.
COMMUNITY_NAME_RE = re.compile(rf"^{_LABEL}$")
NSID_RE = re.compile(
    r"^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}$"
)
RKEY_RE = re.compile(r"^[A-Za-z0-9.\-_:~]{1,512}$")
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
CID_RE = re.compile(r"^[a-zA-Z0-9+=]{8,256}$")
DATETIME_RE = re.compile(
    r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,20})?"
    r"(Z|[+-][0-2][0-9]:[0-5][0-9])$"
)
LANGUAGE_RE = re.compile(r"^(i|[a-zA-Z]{2,3})(-[a-zA-Z0-9]{1,8})*$")

DISALLOWED_TLDS = frozenset(
    {"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"}
)
INVALID_HANDLE = "handle.invalid"


def is_valid_did(value: str) -> bool:
    return len(value) <= 2048 and DID_RE.fullmatch(value) is not None


def is_valid_handle(value: str) -> bool:
    """Handle syntax per spec, allowing reserved TLDs (they are syntactically fine)."""
    return len(value) <= 253 and HANDLE_RE.fullmatch(value) is not None


def is_resolvable_handle(value: str) -> bool:
    """Syntax plus the spec's disallowed TLDs: handles worth resolving on the network."""
    return is_valid_handle(value) and value.rsplit(".", 1)[-1].lower() not in DISALLOWED_TLDS


def is_valid_hostname(value: str) -> bool:
    """A DNS host name of one or more labels (``localhost``, ``coves.social``)."""
    return HOSTNAME_RE.fullmatch(value) is not None


def is_valid_domain(value: str) -> bool:
    """A public DNS name: two or more labels, the last starting with a letter (the
    syntax of a handle), so neither ``localhost`` nor an IPv4 address."""
    return is_valid_handle(value)


def is_valid_community_name(value: str) -> bool:
    return COMMUNITY_NAME_RE.fullmatch(value) is not None


def normalize_handle(value: str) -> str:
    return value.strip().lower()


def is_valid_nsid(value: str) -> bool:
    return len(value) <= 317 and NSID_RE.fullmatch(value) is not None


def is_valid_rkey(value: str) -> bool:
    return value not in {".", ".."} and RKEY_RE.fullmatch(value) is not None


def is_valid_tid(value: str) -> bool:
    return TID_RE.fullmatch(value) is not None


def is_valid_cid(value: str) -> bool:
    return CID_RE.fullmatch(value) is not None


def is_valid_language(value: str) -> bool:
    return LANGUAGE_RE.fullmatch(value) is not None


def parse_datetime(value: str) -> datetime | None:
    """Parse an atproto datetime (RFC 3339 with timezone) to an aware UTC datetime."""
    if not isinstance(value, str) or DATETIME_RE.fullmatch(value) is None:
        return None
    text = value.replace("Z", "+00:00")
    # Python accepts at most 6 fractional digits; the spec allows more.
    if "." in text:
        head, rest = text.split(".", 1)
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None
        frac = digits.group(0)
        text = head + "." + (frac + "000000")[:6] + rest[len(frac) :]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year < 1:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is past datetime.max in UTC
        return None


def format_datetime(value: datetime) -> str:
    """Canonical atproto form: UTC, millisecond precision, trailing Z."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class AtUri:
    """``at://<authority>/<collection>/<rkey>``; collection and rkey optional."""

    authority: str
    collection: str | None = None
    rkey: str | None = None

    def __str__(self) -> str:
        out = f"at://{self.authority}"
        if self.collection:
            out += f"/{self.collection}"
            if self.rkey:
                out += f"/{self.rkey}"
        return out

    @classmethod
    def parse(cls, value: str) -> AtUri:
        """Parse an AT-URI; raise ValueError with a reason when it is not one."""
        if not isinstance(value, str) or not value.startswith("at://"):
            raise ValueError("must start with at://")
        if len(value) > 8192 or any(c in value for c in "?# \t\n"):
            raise ValueError("must not contain query, fragment or whitespace")
        parts = value[5:].split("/")
        if len(parts) > 3 or (len(parts) > 1 and parts[-1] == ""):
            raise ValueError("must be at://authority[/collection[/rkey]]")
        authority = parts[0]
        if not (is_valid_did(authority) or is_valid_handle(authority)):
            raise ValueError("authority must be a DID or handle")
        collection = parts[1] if len(parts) > 1 else None
        rkey = parts[2] if len(parts) > 2 else None
        if collection is not None and not is_valid_nsid(collection):
            raise ValueError("collection must be an NSID")
        if rkey is not None and not is_valid_rkey(rkey):
            raise ValueError("record key is not valid")
        return cls(authority, collection, rkey)

    @classmethod
    def record(cls, did: str, collection: str, rkey: str) -> AtUri:
        return cls(did, collection, rkey)

    @property
    def is_record(self) -> bool:
        return self.collection is not None and self.rkey is not None


def record_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


def parse_record_uri(value: str) -> AtUri:
    """An AT-URI naming one record by DID: what strong refs must point at."""
    uri = AtUri.parse(value)
    if not uri.is_record:
        raise ValueError("must name a record (at://did/collection/rkey)")
    if not is_valid_did(uri.authority):
        raise ValueError("authority must be a DID")
    return uri
