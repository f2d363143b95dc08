"""``coves resolve <did|handle>``: what Coves sees of an identity, for operators.

Runs the production resolver (safe fetch rules, bidirectional handle check)
without the database cache, and prints JSON. Exit status 1 when the
identity does not resolve.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
import trio

from coves.cli import EXTRA_COMMANDS
from coves.config import Settings
from coves.identity.errors import IdentityError
from coves.identity.factory import build_fetcher, build_resolver


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("actor", help="a DID or handle")


async def _resolve(settings: Settings, actor: str) -> tuple[int, dict[str, Any]]:
    fetcher = build_fetcher(settings)
    resolver = build_resolver(settings, None, fetcher)
    try:
        found = await resolver.resolve_actor(actor.strip().removeprefix("@"))
    except IdentityError as exc:
        return 1, {"actor": actor, "error": exc.reason, "message": str(exc)}
    finally:
        await fetcher.aclose()
    doc = found.document
    return 0, {
        "did": found.did,
        "handle": found.handle,
        "handleVerified": found.handle_verified,
        "claimedHandle": doc.claimed_handle,
        "pds": found.pds_url,
        "signingKey": found.signing_key.did_key() if found.signing_key else None,
        "verificationMethods": sorted(doc.verification_keys),
    }


def _run(settings: Settings, args: argparse.Namespace) -> int:
    status, body = trio.run(_resolve, settings, args.actor)
    sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    return status


EXTRA_COMMANDS["resolve"] = ("resolve a DID or handle and print what Coves sees", _configure, _run)
