"""Aggregator API keys: ``ckapi_`` + 64 hex characters, sent as
``Authorization: Bearer ckapi_…`` by the bots.

A key is 256 random bits, shown once when created; only its SHA-256 is
stored (no slow hash: nothing about a random 256-bit key can be guessed, so
the lookup stays one indexed read). An aggregator has at most one live key:
creating a new one revokes the old. A key authenticates exactly what a bot
needs, its own ``post.create`` and read queries, and nothing else (not votes,
comments, key management or community administration), and each key has its
own request budget on top of the per-client limits: the rate-limit class
``api_key`` (``RATE_LIMIT_API_KEY`` a minute), keyed by the key's id and
counted by the dispatcher's shared ``RateLimiter``, so the worker processes of
a deployment draw on one budget instead of one each.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from coves import clock
from coves.atproto.syntax import format_datetime
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.db import Database
from coves.db.queries import aggregators as q
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.ttlcache import ExpiringLRU

log = get_logger(__name__)

KEY_PREFIX = "ckapi_"
KEY_RE = re.compile(r"^ckapi_[0-9a-f]{64}$")
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
POST_CREATE = "social.coves.community.post.create"
TOUCH_INTERVAL = 60.0  # last_used_at is written at most this often per key
LIMIT_CLASS = "api_key"  # coves.xrpc.ratelimit.default_limit_classes


def new_key() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii")).digest()


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._touched: ExpiringLRU[int, bool] = ExpiringLRU(10_000)

    # -- management (the signed-in aggregator) ---------------------------------------
    async def create(self, did: str) -> dict[str, Any]:
        if await q.registration(self._db, did) is None:
            raise XRPCError(
                403,
                "AggregatorNotRegistered",
                "register this account first (social.coves.aggregator.register)",
            )
        key = new_key()
        now = clock.utcnow()
        await q.replace_api_key(self._db, did, key_hash(key), key[:SHOWN_PREFIX_LENGTH], now)
        log.info("aggregator API key created", aggregator=did)
        return {
            "key": key,
            "keyPrefix": key[:SHOWN_PREFIX_LENGTH],
            "createdAt": format_datetime(now),
            "message": "Store this key now: it is not shown again.",
        }

    async def get(self, did: str) -> dict[str, Any]:
        row = await q.live_api_key(self._db, did)
        if row is None:
            raise XRPCError(404, "ApiKeyNotFound", "this aggregator has no live API key")
        out = {"keyPrefix": row["key_prefix"], "createdAt": format_datetime(row["created_at"])}
        if row["last_used_at"] is not None:
            out["lastUsedAt"] = format_datetime(row["last_used_at"])
        return out

    async def revoke(self, did: str) -> dict[str, Any]:
        if not await q.revoke_api_key(self._db, did, clock.utcnow()):
            raise XRPCError(404, "ApiKeyNotFound", "this aggregator has no live API key")
        log.info("aggregator API key revoked", aggregator=did)
        return {"revoked": True}

    # -- authentication ----------------------------------------------------------------
    async def authenticate(self, token: str, request: AuthInput) -> Viewer:
        if not KEY_RE.match(token):
            raise AuthFailure("malformed", "not a valid API key")
        if request.http_method not in ("GET", "HEAD") and request.nsid != POST_CREATE:
            raise AuthFailure(
                "api_key_scope",
                "an API key may only create posts and read; sign in for anything else",
            )
        row = await q.api_key_owner(self._db, key_hash(token))
        if row is None:
            raise AuthFailure("api_key_unknown", "unknown or revoked API key")
        key_id: int = row["id"]
        if self._touched.get(key_id) is None:
            self._touched.set(key_id, True, TOUCH_INTERVAL)
            await q.touch_api_key(self._db, key_id, clock.utcnow())
        return Viewer(
            did=row["aggregator_did"], method="api_key", limits=((LIMIT_CLASS, str(key_id)),)
        )
