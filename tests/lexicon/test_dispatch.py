"""Lexicon parameter decoding and body validation through the real XRPC dispatcher."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from coves.config import test_settings
from coves.context import AppContext
from coves.db import Database
from coves.lexicon import LexiconRegistry
from coves.xrpc.app import create_app
from coves.xrpc.routing import Endpoint, XRPCRequest
from tests.lexicon.helpers import registry_from
from tests.lexicon.test_params import PROC

FEED = "social.coves.feed.getCommunity"
ALIAS = "social.coves.communityFeed.getCommunity"


def make_app(lexicons: LexiconRegistry, endpoints: dict[str, Endpoint]) -> Any:
    # The handlers never touch the database: an unopened pool keeps this test off PostgreSQL.
    ctx = AppContext(settings=test_settings(), db=Database("postgresql:///unused"))
    ctx = replace(ctx, lexicons=lexicons)
    return create_app(ctx, endpoints=endpoints)


async def test_query_params_decoded_before_handler(registry: LexiconRegistry) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(req: XRPCRequest) -> Any:
        seen.append(dict(req.params))
        return {"feed": []}

    endpoints = {nsid: Endpoint(nsid=nsid, kind="query", handler=handler) for nsid in (FEED, ALIAS)}
    client = make_app(registry, endpoints).test_client()
    with trio.fail_after(10):
        bad = await client.get(f"/xrpc/{FEED}?community=gaming&limit=abc")
        assert bad.status_code == 400
        body = await bad.get_json()
        assert body["error"] == "InvalidRequest"
        assert body["message"].startswith("limit:")

        # Above the maximum is clamped (what clients rely on); below the minimum is refused.
        too_big = await client.get(f"/xrpc/{FEED}?community=gaming&limit=51")
        assert too_big.status_code == 200
        assert seen.pop() == {"community": "gaming", "limit": 50, "sort": "hot"}
        too_small = await client.get(f"/xrpc/{FEED}?community=gaming&limit=0")
        assert too_small.status_code == 400
        assert (await too_small.get_json())["message"].startswith("limit:")

        missing = await client.get(f"/xrpc/{FEED}")
        assert missing.status_code == 400
        assert (await missing.get_json())["message"] == "community: required parameter missing"
        assert seen == []

        ok = await client.get(f"/xrpc/{FEED}?community=gaming&limit=20&extra=1")
        assert ok.status_code == 200
        assert seen == [{"community": "gaming", "limit": 20, "sort": "hot"}]
        assert isinstance(seen[0]["limit"], int)

        alias_bad = await client.get(f"/xrpc/{ALIAS}?community=gaming&sort=best")
        assert alias_bad.status_code == 400
        alias_ok = await client.get(f"/xrpc/{ALIAS}?community=gaming")
        assert alias_ok.status_code == 200
        assert seen[-1] == {"community": "gaming", "limit": 15, "sort": "hot"}


async def test_procedure_body_validated_before_handler(tmp_path: Path) -> None:
    reg = registry_from(tmp_path, PROC)
    calls: list[Any] = []

    async def handler(req: XRPCRequest) -> Any:
        calls.append((req.params, req.body))
        return {"ok": True}

    nsid = "com.example.test"
    client = make_app(
        reg, {nsid: Endpoint(nsid=nsid, kind="procedure", handler=handler)}
    ).test_client()
    with trio.fail_after(10):
        bad = await client.post(f"/xrpc/{nsid}", json={"name": 5})
        assert bad.status_code == 400
        assert (await bad.get_json())["message"].startswith("name: must be a string")
        empty = await client.post(f"/xrpc/{nsid}")
        assert empty.status_code == 400
        assert calls == []
        ok = await client.post(f"/xrpc/{nsid}?dry=true", json={"name": "x"})
        assert ok.status_code == 200
        assert calls == [({"dry": True}, {"name": "x"})]
