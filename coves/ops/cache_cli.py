"""``coves cache clear``: drop the caches Coves keeps in the database.

Resolved identities (DID documents, handles) are cached in ``identity_cache``
for ``IDENTITY_CACHE_TTL_SECONDS`` and shared by every instance; after a user
fixes a broken handle or moves PDS, clearing their entries makes every
instance resolve them afresh on the next request. Ranked-feed snapshots
(``listing_snapshots``) let a reader page through hot/top without repeats;
clearing them makes the next page of a session already open start over
(``--feed-snapshots`` only, as it is visible to readers).

The in-process caches are all short (response micro-cache at most
``RESPONSE_CACHE_SECONDS``, comment threads 2 s, community and post views up
to a minute) and need no clearing; restarting Coves empties them too.
"""

from __future__ import annotations

import argparse

from coves.config import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    clear = sub.add_parser("clear", help="drop cached identities (and optionally feed snapshots)")
    clear.add_argument(
        "--identity",
        nargs="+",
        metavar="DID_OR_HANDLE",
        help="only the entries for these DIDs or handles (default: every entry)",
    )
    clear.add_argument(
        "--feed-snapshots",
        action="store_true",
        help="also drop the ranked-feed snapshots (open hot/top sessions start over)",
    )


async def _clear(settings: Settings, args: argparse.Namespace) -> None:
    from coves.db.queries import identity as identity_q
    from coves.db.queries import ops as q
    from coves.ops.database import operator_database

    async with operator_database(settings, pool_size=1) as (db, _attached):
        if args.identity:
            wanted = [item.strip().removeprefix("@").lower() for item in args.identity]
            dropped = await identity_q.purge(db, wanted)
        else:
            dropped = await q.clear_identity_cache(db)
        print(f"identity cache: {dropped:,} entr{'y' if dropped == 1 else 'ies'} dropped")
        if args.feed_snapshots:
            snapshots = await q.clear_listing_snapshots(db)
            print(f"feed snapshots: {snapshots:,} dropped")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from coves.ops.problems import run_command

    run_command("cache", lambda: _clear(settings, args))
    return 0


def _register() -> None:
    from coves.cli import EXTRA_COMMANDS

    EXTRA_COMMANDS["cache"] = ("clear the caches kept in the database", configure, run)


_register()
