"""``coves communities``: operator commands for hosted communities.

- ``coves communities refresh NAME`` / ``--all``: renew PDS sessions now (the
  runbook's "manually trigger community token refresh"; also clears a
  lock-out once the account's password has been fixed).
- ``coves communities restore NAME``: undo a soft delete.

Prints one JSON object per community; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
import trio

from coves.cli import EXTRA_COMMANDS
from coves.config import Settings
from coves.errors import XRPCError
from coves.hosting.service import CommunityHosting


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    refresh = actions.add_parser("refresh", help="renew community PDS sessions now")
    which = refresh.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="the community's name")
    which.add_argument("--all", action="store_true", help="every active community")
    restore = actions.add_parser("restore", help="undo a community's soft delete")
    restore.add_argument("name", help="the community's name")


async def refresh_communities(
    hosting: CommunityHosting, names: list[str] | None
) -> list[dict[str, Any]]:
    """Renew each named community's session (every active one when ``names`` is None)."""
    from coves.db.queries import community_accounts as q

    targets = names if names is not None else await q.all_active_names(hosting.db)
    results: list[dict[str, Any]] = []
    for name in targets:
        try:
            creds = await hosting.sessions.refresh(name.lower())
        except XRPCError as exc:
            results.append(
                {"community": name, "ok": False, "error": exc.error, "message": exc.message}
            )
            continue
        expires = creds.access_expires_at.isoformat() if creds.access_expires_at else None
        results.append({"community": name, "ok": True, "did": creds.did, "expiresAt": expires})
    return results


async def _main(settings: Settings, args: argparse.Namespace) -> list[dict[str, Any]]:
    from coves.context import AppContext
    from coves.lexicon import LexiconRegistry
    from coves.ops.database import operator_database

    async with operator_database(settings) as (db, _attached):
        ctx = AppContext(settings=settings, db=db, lexicons=LexiconRegistry.load())
        try:
            if args.action == "restore":
                return [await restore_community(ctx.hosting, args.name)]
            return await refresh_communities(ctx.hosting, None if args.all else [args.name])
        finally:
            await ctx.pds.aclose()


async def restore_community(hosting: CommunityHosting, name: str) -> dict[str, Any]:
    try:
        return {"community": name, "ok": True, **await hosting.restore(name)}
    except XRPCError as exc:
        return {"community": name, "ok": False, "error": exc.error, "message": exc.message}


def _run(settings: Settings, args: argparse.Namespace) -> int:
    results = trio.run(_main, settings, args)
    for result in results:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0 if all(r["ok"] for r in results) else 1


EXTRA_COMMANDS["communities"] = (
    "operate hosted communities: refresh sessions, restore deleted ones",
    _configure,
    _run,
)
