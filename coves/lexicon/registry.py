"""The loaded set of lexicons: what the dispatcher and ingestion validate against.

Every file under the lexicon directory is parsed, checked (``lexicon: 1``,
``id`` matching its path) and compiled at load, so a broken or dangling
reference stops start-up instead of rejecting traffic later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

import coves
from coves.errors import XRPCError
from coves.lexicon._compile import Compiler, JsonDict, Validator
from coves.lexicon.errors import LexiconSchemaError, LexiconValidationError, _Invalid
from coves.lexicon.params import ParamsDecoder, compile_params

ENV_DIR = "COVES_LEXICON_DIR"

# Routes served under a second NSID for compatibility. The Go AppView routed
# the community feed as ``communityFeed.getCommunity`` while its lexicon is
# ``feed.getCommunity``; clients use both.
ALIASES: Mapping[str, str] = {
    "social.coves.communityFeed.getCommunity": "social.coves.feed.getCommunity",
}


def default_root() -> Path:
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override)
    return Path(coves.__file__).resolve().parents[1] / "lexicons"


def _read_documents(root: Path) -> dict[str, JsonDict]:
    if not root.is_dir():
        raise LexiconSchemaError(
            f"lexicon directory {root} does not exist; set {ENV_DIR} to the checkout's "
            "lexicons/ directory when Coves is installed outside its source tree"
        )
    documents: dict[str, JsonDict] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            doc = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise LexiconSchemaError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("lexicon") != 1:
            raise LexiconSchemaError(f"{path}: not a lexicon v1 document")
        nsid = doc.get("id")
        expected = ".".join(path.relative_to(root).with_suffix("").parts)
        if nsid != expected:
            raise LexiconSchemaError(f"{path}: id {nsid!r} does not match its path ({expected})")
        if not isinstance(doc.get("defs"), dict) or not doc["defs"]:
            raise LexiconSchemaError(f"{path}: defs must be a non-empty object")
        documents[nsid] = doc
    return documents


class LexiconRegistry:
    """Compiled lexicons by NSID, with record, parameter and body validation."""

    def __init__(self, documents: Mapping[str, JsonDict]) -> None:
        self._documents = dict(documents)
        self._compiler = Compiler(self._documents)
        self._kinds: dict[str, str] = {}
        self._records: dict[str, Validator] = {}
        self._params: dict[str, ParamsDecoder] = {}
        self._inputs: dict[str, Validator | None] = {}
        self._outputs: dict[str, Validator | None] = {}
        for nsid, doc in self._documents.items():
            main = doc["defs"].get("main")
            kind = main.get("type") if isinstance(main, dict) else "defs"
            self._kinds[nsid] = str(kind)
            # Compile every definition, so dangling refs fail here, not per request.
            for name, schema in doc["defs"].items():
                if isinstance(schema, dict) and schema.get("type") not in (
                    "query",
                    "procedure",
                    "subscription",
                    "permission-set",
                ):
                    self._compiler.ref(f"{nsid}#{name}", nsid)
            if kind == "record":
                if main.get("key") is None:
                    raise LexiconSchemaError(f"{nsid}: a record needs a key type")
                self._records[nsid] = self._compiler.record(nsid)
            elif kind in ("query", "procedure", "subscription"):
                self._params[nsid] = compile_params(self._compiler, main.get("parameters"), nsid)
                self._inputs[nsid] = self._body(main.get("input"), nsid, "input")
                self._outputs[nsid] = self._body(main.get("output"), nsid, "output")
        for alias, target in ALIASES.items():
            if target in self._documents:
                self._kinds[alias] = self._kinds[target]
                self._params[alias] = self._params[target]
                self._inputs[alias] = self._inputs[target]
                self._outputs[alias] = self._outputs[target]

    @classmethod
    def load(cls, root: Path | None = None) -> LexiconRegistry:
        return cls(_read_documents(root if root is not None else default_root()))

    def _body(self, body: Any, nsid: str, where: str) -> Validator | None:
        if body is None:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("encoding"), str):
            raise LexiconSchemaError(f"{nsid}.{where}: needs an encoding")
        schema = body.get("schema")
        if schema is None:
            return None
        return self._compiler.field(schema, nsid, f"{nsid}.{where}.schema")

    # -- lookup --------------------------------------------------------------

    def has(self, nsid: str) -> bool:
        return nsid in self._kinds

    def kind(self, nsid: str) -> str:
        """The main definition's type (record, query, procedure, ...); "defs" for shared defs."""
        try:
            return self._kinds[nsid]
        except KeyError:
            raise KeyError(f"no lexicon for {nsid}") from None

    def record_nsids(self) -> list[str]:
        return sorted(self._records)

    def nsids(self) -> list[str]:
        return sorted(self._documents)

    def document(self, nsid: str) -> JsonDict:
        """The parsed lexicon document (for tooling and tests)."""
        return self._documents[ALIASES.get(nsid, nsid)]

    # -- validation ----------------------------------------------------------

    def validate_record(self, nsid: str, value: object) -> None:
        """Check a record of collection ``nsid``; raise LexiconValidationError naming the field."""
        check = self._records.get(nsid)
        if check is None:
            raise LexiconValidationError("$type", f"no record lexicon for collection {nsid}")
        try:
            check(value)
        except _Invalid as err:
            raise err.to_error() from None

    def decode_params(self, nsid: str, raw: Mapping[str, list[str]]) -> dict[str, Any]:
        """Typed, defaulted parameters; XRPCError 400 naming the parameter on bad input."""
        decode = self._params.get(nsid)
        if decode is None:
            return {}
        return decode(raw)

    def validate_input(self, nsid: str, body: object) -> None:
        """Check a procedure's JSON body; XRPCError 400 on failure."""
        if nsid not in self._inputs:
            return
        check = self._inputs[nsid]
        if check is None:
            return
        if body is None:
            raise XRPCError(400, "InvalidRequest", "request body is required")
        try:
            check(body)
        except _Invalid as err:
            raise XRPCError(400, "InvalidRequest", str(err.to_error())) from None

    def validate_output(self, nsid: str, body: object) -> None:
        """Check a response against the method's output schema (used by tests of views)."""
        check = self._outputs.get(nsid)
        if check is None:
            return
        try:
            check(body)
        except _Invalid as err:
            raise err.to_error() from None
