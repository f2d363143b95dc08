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
from coves.db.queries import instance as instance_sql
from coves.db.sealed import INSTANCE_SECRETS
from coves.xrpc.context import AppContext

SIGNING_KEY_NAME = "instance_signing_key"
_lock = trio.Lock()


async def instance_signing_key(ctx: AppContext) -> PrivateKey:
    configured = ctx.settings.instance_signing_key
    if configured is not None:
        return PrivateKey.from_hex(configured.reveal())
    if isinstance(ctx.instance_key, PrivateKey):
        return ctx.instance_key
    async with _lock:
        box = ctx.settings.secret_box()
        context = INSTANCE_SECRETS.context({"name": SIGNING_KEY_NAME})
        sealed = await instance_sql.get_secret(ctx.db, SIGNING_KEY_NAME)
        if sealed is None:
            fresh = PrivateKey.generate("k256")
            sealed = box.seal(fresh.to_hex().encode(), context=context)
            # Two processes racing: the first insert wins and both read it back.
            await instance_sql.insert_secret(ctx.db, SIGNING_KEY_NAME, sealed)
            sealed = await instance_sql.get_secret(ctx.db, SIGNING_KEY_NAME)
            assert sealed is not None
        key = PrivateKey.from_hex(box.open(sealed, context=context).decode())
        ctx.instance_key = key
        return key


async def instance_did_document(ctx: AppContext) -> dict[str, Any] | None:
    settings = ctx.settings
    did = settings.instance_did
    if not did.startswith("did:web:"):
        return None
    key = await instance_signing_key(ctx)
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
