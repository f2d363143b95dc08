"""A PLC directory for the bench viewers: ``GET /<did>`` answers their DID documents.

Served by Hypercorn's trio worker on the client's core (``bench/traffic.py``
starts it), with ``PLC_DIRECTORY_URL`` pointing Coves at it, so signed-in
requests make Coves resolve and verify real keys. ``BENCH_VIEWERS`` says how
many viewers exist; documents are built on first request and kept.

    BENCH_VIEWERS=2000 .venv/bin/python -m hypercorn --worker-class trio \
        --bind 127.0.0.1:8099 bench.plc_fixture:app
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote

import orjson

from bench.traffic_world import viewer_did, viewer_document

_INDEX = {viewer_did(i): i for i in range(int(os.environ.get("BENCH_VIEWERS", "2000")))}
_DOCS: dict[str, bytes] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    did = unquote(scope["path"].lstrip("/"))
    body = _DOCS.get(did)
    if body is None and did in _INDEX:
        body = _DOCS[did] = orjson.dumps(viewer_document(_INDEX[did]))
    status = 200 if body is not None else 404
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/did+ld+json")],
        }
    )
    await send({"type": "http.response.body", "body": body or b'{"message":"DID not registered"}'})
