"""Build throwaway lexicon directories so validator mechanics can be tested in isolation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coves.lexicon import LexiconRegistry

NSID = "com.example.test"


def registry_from(
    root: Path, defs: dict[str, Any], extra: dict[str, Any] | None = None
) -> LexiconRegistry:
    docs = {NSID: defs, **(extra or {})}
    for nsid, body in docs.items():
        path = root.joinpath(*nsid.split(".")).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"lexicon": 1, "id": nsid, "defs": body}))
    return LexiconRegistry.load(root)


def record(
    props: dict[str, Any], required: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        body["required"] = required
    return {"type": "record", "key": "tid", "record": body}
