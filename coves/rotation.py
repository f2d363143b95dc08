"""Key rotation for sealed values, and the start-up check that the keys fit the data.

Both walk the registry in ``coves.db.sealed``. The check runs before Coves
serves: a key that cannot open what the database holds would otherwise show
up much later as failing requests (did.json, PDS calls) while ``_health``
says ok. ``coves rotate-key`` re-seals every value with the current
``ENCRYPTION_KEY`` so the old keys can be dropped from ``ENCRYPTION_OLD_KEYS``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import psycopg

from coves.db import Database, Row
from coves.db.sealed import SEALED_COLUMNS, SealedColumn, iter_sealed, key_census, replace_sealed
from coves.logs import get_logger
from coves.secrets import SealedValueError, SecretBox, UnknownKey

log = get_logger(__name__)


class SealedDataError(Exception):
    """The configured keys cannot open data the database holds."""


def _describe(entry: SealedColumn, row: Row) -> str:
    key = ", ".join(f"{c}={row[c]!r}" for c in entry.key)
    return f"{entry.label} ({key})"


async def check_sealed_data(
    db: Database, box: SecretBox, columns: tuple[SealedColumn, ...] = SEALED_COLUMNS
) -> None:
    """Raise SealedDataError naming every key the data needs and the ring lacks.

    Per column: the key ids present are counted in SQL, then one value per key
    id is opened, so the check costs one scan per column and a few decryptions.
    """
    problems: list[str] = []
    for entry in columns:
        for row in await key_census(db, entry):
            try:
                box.open(row["sealed"], context=entry.context(row))
            except UnknownKey as exc:
                problems.append(
                    f"{row['n']} value(s) in {entry.label} are sealed with key {exc.key_id}, "
                    "which is neither ENCRYPTION_KEY nor in ENCRYPTION_OLD_KEYS"
                )
            except SealedValueError as exc:
                problems.append(
                    f"{_describe(entry, row)} does not open with the configured keys ({exc})"
                )
    if problems:
        raise SealedDataError(
            "the encryption keys cannot open data in the database: "
            + "; ".join(problems)
            + f". Configured key ids: {', '.join(box.key_ids)} (ENCRYPTION_KEY first). "
            "Set ENCRYPTION_KEY back, or list the key that sealed it in ENCRYPTION_OLD_KEYS."
        )


@dataclass
class RotationReport:
    resealed: Counter[str] = field(default_factory=Counter)
    current: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        labels = sorted(set(self.resealed) | set(self.current))
        out = [
            f"{label}: re-sealed {self.resealed[label]}, already current {self.current[label]}"
            for label in labels
        ]
        out += [f"cannot open {item}" for item in self.failed]
        return out


async def rotate_keys(
    db: Database, box: SecretBox, columns: tuple[SealedColumn, ...] = SEALED_COLUMNS
) -> RotationReport:
    """Re-seal every value not sealed with the current key; report what it did.

    Each batch is its own transaction and each update compares the old value,
    so running instances may keep writing meanwhile (they must already know
    the new key). Values no key opens are listed and left as they are.
    """
    report = RotationReport()
    for entry in columns:

        def one_column(conn: psycopg.Connection[Row], entry: SealedColumn = entry) -> None:
            for rows in iter_sealed(conn, entry):
                with conn.transaction():
                    for row in rows:
                        sealed = bytes(row["sealed"])
                        if box.is_current(sealed):
                            report.current[entry.label] += 1
                            continue
                        context = entry.context(row)
                        try:
                            plain = box.open(sealed, context=context)
                        except SealedValueError as exc:
                            report.failed.append(f"{_describe(entry, row)}: {exc}")
                            continue
                        if replace_sealed(conn, entry, row, box.seal(plain, context=context)):
                            report.resealed[entry.label] += 1
                        else:
                            report.current[entry.label] += 1  # a writer got there first

        await db.run(one_column, transaction=False)
        log.info(
            "sealed column rotated",
            column=entry.label,
            resealed=report.resealed[entry.label],
            current=report.current[entry.label],
        )
    return report
