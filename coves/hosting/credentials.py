"""A hosted community's PDS credentials, sealed at rest.

The password and both session tokens live in ``community_accounts`` sealed
with :class:`~coves.secrets.SecretBox` (AES-256-GCM with a key id; the key from
``ENCRYPTION_KEY``, older ones from ``ENCRYPTION_OLD_KEYS``). The associated
data names the row and column (``community_accounts:<name>:<purpose>``), so a
ciphertext copied to another community or column does not open. The columns
are registered in ``coves.db.sealed.SEALED_COLUMNS``, so ``coves rotate-key``
re-seals them and start-up checks the keys open them. Plaintexts exist only as
:class:`~coves.secrets.Secret` values in memory, never in logs.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from coves.base64url import b64url_decode
from coves.db import Row
from coves.db.sealed import COMMUNITY_ACCESS, COMMUNITY_PASSWORD, COMMUNITY_REFRESH, SealedColumn
from coves.secrets import Secret, SecretBox

# The registry entries (coves.db.sealed) give each column's AAD, so sealing here,
# ``coves rotate-key`` and the start-up key check agree on it.
_COLUMNS: dict[str, SealedColumn] = {
    entry.column: entry for entry in (COMMUNITY_PASSWORD, COMMUNITY_ACCESS, COMMUNITY_REFRESH)
}


def seal_context(name: str, column: str) -> str:
    """The AAD of ``column`` (``password_sealed``...) in the row of community ``name``."""
    return _COLUMNS[column].context({"name": name})


def seal(box: SecretBox, name: str, column: str, value: Secret) -> bytes:
    return box.seal(value.reveal().encode(), context=seal_context(name, column))


def unseal(box: SecretBox, name: str, column: str, sealed: bytes) -> Secret:
    return Secret(box.open(bytes(sealed), context=seal_context(name, column)).decode())


@dataclass(frozen=True)
class Credentials:
    """What a community's stored row holds, opened."""

    name: str
    did: str
    handle: str
    pds_url: str
    password: Secret
    access: Secret | None
    refresh: Secret | None
    refresh_sealed: bytes | None  # as stored: the compare-and-swap token of a refresh
    access_expires_at: datetime | None


def open_row(box: SecretBox, row: Row) -> Credentials:
    name = row["name"]
    access = row["access_sealed"]
    refresh = row["refresh_sealed"]
    return Credentials(
        name=name,
        did=row["did"],
        handle=row["handle"],
        pds_url=row["pds_url"],
        password=unseal(box, name, "password_sealed", row["password_sealed"]),
        access=unseal(box, name, "access_sealed", access) if access is not None else None,
        refresh=unseal(box, name, "refresh_sealed", refresh) if refresh is not None else None,
        refresh_sealed=bytes(refresh) if refresh is not None else None,
        access_expires_at=row["access_expires_at"],
    )


def jwt_expiry(token: Secret) -> datetime | None:
    """The ``exp`` of a session JWT, read without verifying it.

    Only the PDS can verify its HS256 session tokens; we read ``exp`` to know
    when to refresh, nothing else. None when the token does not say.
    """
    parts = token.reveal().split(".")
    if len(parts) != 3:
        return None
    try:
        claims: Any = orjson.loads(b64url_decode(parts[1]))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
