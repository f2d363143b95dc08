"""This instance's own identity: signing key and did:web document.

The signing key comes from ``INSTANCE_SIGNING_KEY`` or, when unset, is
generated once and kept in ``instance_secrets`` sealed with the encryption
key, so a development instance has a stable identity without an operator
ever handling key material. It is never logged.
"""

from __future__ import annotations

from typing import Any

import trio

from coves.atproto.keys import PrivateKey
from coves.config import Settings
from coves.db import Database
from coves.db.queries import instance as instance_sql
from coves.db.sealed import INSTANCE_SECRETS

SIGNING_KEY_NAME = "instance_signing_key"


class InstanceKey:
    """The signing key, read (or generated) on first use and kept for the process.

    Made with the application context; the database is only touched by the
    first :meth:`get`, so a context can be built before the pool is open.
    """

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._key: PrivateKey | None = None
        self._lock = trio.Lock()

    async def get(self) -> PrivateKey:
        configured = self._settings.instance_signing_key
        if configured is not None:
            return PrivateKey.from_hex(configured.reveal())
        if self._key is not None:
            return self._key
        async with self._lock:
            if self._key is None:
                self._key = await self._load()
            return self._key

    async def _load(self) -> PrivateKey:
        box = self._settings.secret_box()
        context = INSTANCE_SECRETS.context({"name": SIGNING_KEY_NAME})
        sealed = await instance_sql.get_secret(self._db, SIGNING_KEY_NAME)
        if sealed is None:
            fresh = PrivateKey.generate("k256")
            sealed = box.seal(fresh.to_hex().encode(), context=context)
            # Two processes racing: the first insert wins and both read it back.
            await instance_sql.insert_secret(self._db, SIGNING_KEY_NAME, sealed)
            sealed = await instance_sql.get_secret(self._db, SIGNING_KEY_NAME)
            assert sealed is not None
        return PrivateKey.from_hex(box.open(sealed, context=context).decode())


async def instance_did_document(settings: Settings, signing: InstanceKey) -> dict[str, Any] | None:
    did = settings.instance_did
    if not did.startswith("did:web:"):
        return None
    key = await signing.get()
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
        ],
        "id": did,
        "alsoKnownAs": [f"at://{settings.instance_domain}"],
        "verificationMethod": [
            {
                "id": f"{did}#atproto",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.public().multikey(),
            }
        ],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": settings.pds_url,
            },
            {
                "id": f"#{settings.appview_service_id}",
                "type": "CovesAppView",
                "serviceEndpoint": settings.appview_public_url,
            },
        ],
    }
