"""``coves rotate-key``: re-seal every sealed value with the current ENCRYPTION_KEY.

Rotation, step by step (docs/operations.md): set the new ``ENCRYPTION_KEY``
and move the old one to ``ENCRYPTION_OLD_KEYS``, restart, run this command,
then drop the old key. Exit status 1 when some value no configured key opens.
"""

from __future__ import annotations

import argparse
import sys

import trio

from coves.cli import EXTRA_COMMANDS
from coves.config import Settings


async def _rotate(settings: Settings) -> int:
    from coves.db.migrate import require_current_schema
    from coves.db.tooling import tool_database
    from coves.rotation import rotate_keys

    box = settings.secret_box()
    async with tool_database(settings) as db:
        await require_current_schema(db)
        report = await rotate_keys(db, box)
    for line in report.lines():
        print(line)
    print(f"current key id: {box.current_key_id}")
    if report.failed:
        print(
            "coves: some values open with none of the configured keys; "
            "add the key that sealed them to ENCRYPTION_OLD_KEYS and run again",
            file=sys.stderr,
        )
        return 1
    return 0


def _configure(_parser: argparse.ArgumentParser) -> None:
    return  # no options: the keys come from the configuration


def _run(settings: Settings, args: argparse.Namespace) -> int:
    return trio.run(_rotate, settings)


EXTRA_COMMANDS["rotate-key"] = (
    "re-seal every value stored encrypted with the current ENCRYPTION_KEY",
    _configure,
    _run,
)
