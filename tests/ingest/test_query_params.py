"""The indexer's array parameters travel in binary.

psycopg dumps a text-format array element by element through regular
expressions (quoting), which cost the indexer about half of its Python time
per batch; the binary dumper is ~20x cheaper. A ``%s::T[]`` placeholder
would silently bring the text path back.
"""

from __future__ import annotations

import inspect
import re

from coves.db.queries import ingest


def test_array_placeholders_are_binary() -> None:
    source = inspect.getsource(ingest)
    assert re.findall(r"%(?:\(\w+\))?s::\w+\[\]", source) == []
    assert len(re.findall(r"%(?:\(\w+\))?b::\w+\[\]", source)) > 100
