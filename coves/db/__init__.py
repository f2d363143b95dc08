"""Everything that speaks SQL lives under this package.

Domain code calls the query modules here (``coves.db.queries``) with a
:class:`Database`; nothing outside ``coves.db`` writes SQL, so the driver
(psycopg 3 today) stays swappable.
"""

from coves.db._pool import (
    Database,
    DatabaseError,
    DatabaseUnavailable,
    Params,
    PoolStats,
    QueryTimeout,
    Row,
    Transaction,
    fail_fast_on_outage,
)

__all__ = [
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "Params",
    "PoolStats",
    "QueryTimeout",
    "Row",
    "Transaction",
    "fail_fast_on_outage",
]
