"""Compile lexicon definitions into nested validator closures, once.

Ingestion validates every record it indexes, so the schema JSON is walked
only here: each definition becomes a closure specialised to its constraints
(a string field without a format pays nothing for formats), and refs are
resolved to the compiled closure of their target. Validators raise
``_Invalid`` and each enclosing object/array adds its path segment while the
exception unwinds, so valid values never build path strings.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from coves.lexicon.errors import LexiconSchemaError, _Invalid, shown
from coves.lexicon.formats import FORMATS
from coves.lexicon.text import bytes_within, graphemes_within

Validator = Callable[[Any], None]
JsonDict = dict[str, Any]

FIELD_TYPES = frozenset(
    {
        "null",
        "boolean",
        "integer",
        "string",
        "bytes",
        "cid-link",
        "blob",
        "array",
        "object",
        "ref",
        "union",
        "unknown",
    }
)
PRIMARY_TYPES = frozenset({"record", "query", "procedure", "subscription"})


def _fail(message: str, *segments: str | int) -> _Invalid:
    err = _Invalid(message)
    err.segments.extend(reversed(segments))
    return err


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def split_ref(ref: str, context_nsid: str) -> tuple[str, str]:
    """``#def`` / ``nsid`` / ``nsid#def`` → (nsid, def name)."""
    if ref.startswith("#"):
        return context_nsid, ref[1:]
    nsid, _, name = ref.partition("#")
    return nsid, name or "main"


def full_ref(ref: str, context_nsid: str) -> str:
    nsid, name = split_ref(ref, context_nsid)
    return f"{nsid}#{name}"


def normalize_type(value: str) -> str:
    """A ``$type`` naming a main definition may omit ``#main``."""
    return value if "#" in value else f"{value}#main"


def mime_matcher(patterns: list[str]) -> Callable[[str], bool]:
    exact = {p.lower() for p in patterns if not p.endswith("/*")}
    prefixes = tuple(p[:-1].lower() for p in patterns if p.endswith("/*") and p != "*/*")
    anything = "*/*" in patterns

    def matches(mime: str) -> bool:
        lowered = mime.lower()
        return anything or lowered in exact or (bool(prefixes) and lowered.startswith(prefixes))

    return matches


class Compiler:
    """Compiles definitions from a set of lexicon documents, caching by ``nsid#def``."""

    def __init__(self, documents: Mapping[str, JsonDict]) -> None:
        self._documents = documents
        self._compiled: dict[str, Validator] = {}

    # -- definitions -------------------------------------------------------

    def definition(self, nsid: str, name: str) -> JsonDict:
        doc = self._documents.get(nsid)
        if doc is None:
            raise LexiconSchemaError(f"reference to unknown lexicon {nsid}")
        schema = doc["defs"].get(name)
        if not isinstance(schema, dict):
            raise LexiconSchemaError(f"reference to unknown definition {nsid}#{name}")
        return schema

    def ref(self, ref: str, context_nsid: str) -> Validator:
        """The validator for a referenced definition; recursion-safe."""
        nsid, name = split_ref(ref, context_nsid)
        key = f"{nsid}#{name}"
        existing = self._compiled.get(key)
        if existing is not None:
            return existing
        schema = self.definition(nsid, name)
        cell: list[Validator] = []

        def deferred(value: Any) -> None:
            cell[0](value)

        self._compiled[key] = deferred
        kind = schema.get("type")
        if kind == "record":
            compiled = self.field(schema.get("record"), nsid, key)
        elif kind == "token":
            compiled = self._token(key)
        elif kind in PRIMARY_TYPES:
            raise LexiconSchemaError(f"{key}: a {kind} cannot be referenced as a value")
        else:
            compiled = self.field(schema, nsid, key)
        cell.append(compiled)
        self._compiled[key] = compiled
        return compiled

    def _token(self, key: str) -> Validator:
        short = key.removesuffix("#main")

        def validate(value: Any) -> None:
            if value not in (key, short):
                raise _fail(f"must be the token {short}")

        return validate

    # -- fields ------------------------------------------------------------

    def field(self, schema: Any, nsid: str, where: str) -> Validator:
        if not isinstance(schema, dict):
            raise LexiconSchemaError(f"{where}: schema must be an object")
        kind = schema.get("type")
        if kind not in FIELD_TYPES:
            raise LexiconSchemaError(f"{where}: unsupported field type {kind!r}")
        builder: Callable[[JsonDict, str, str], Validator] = getattr(
            self, "_" + kind.replace("-", "_")
        )
        return builder(schema, nsid, where)

    def _null(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        def validate(value: Any) -> None:
            if value is not None:
                raise _fail("must be null")

        return validate

    def _boolean(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        const = schema.get("const")

        def validate(value: Any) -> None:
            if value is not True and value is not False:
                raise _fail(f"must be a boolean, got {_describe(value)}")
            if const is not None and value is not const:
                raise _fail(f"must be {str(const).lower()}")

        return validate

    def _integer(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        minimum = schema.get("minimum")
        maximum = schema.get("maximum")
        enum = frozenset(schema["enum"]) if "enum" in schema else None
        const = schema.get("const")

        def validate(value: Any) -> None:
            if type(value) is not int:
                raise _fail(f"must be an integer, got {_describe(value)}")
            if minimum is not None and value < minimum:
                raise _fail(f"must be at least {minimum}")
            if maximum is not None and value > maximum:
                raise _fail(f"must be at most {maximum}")
            if enum is not None and value not in enum:
                raise _fail(f"must be one of {sorted(enum)}")
            if const is not None and value != const:
                raise _fail(f"must be {const}")

        return validate

    def _string(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        min_len = schema.get("minLength")
        max_len = schema.get("maxLength")
        min_g = schema.get("minGraphemes")
        max_g = schema.get("maxGraphemes")
        enum_list = schema.get("enum")
        enum = frozenset(enum_list) if enum_list is not None else None
        const = schema.get("const")
        fmt = schema.get("format")
        check_format = None
        if fmt is not None:
            check_format = FORMATS.get(fmt)
            if check_format is None:
                raise LexiconSchemaError(f"{where}: unknown string format {fmt!r}")
        lengths = min_len is not None or max_len is not None
        graphemes = min_g is not None or max_g is not None
        enum_text = ", ".join(enum_list) if enum_list is not None else ""

        # The two shapes most record fields take (a bare identifier, an enum)
        # get closures without the checks they cannot need.
        if (
            check_format is not None
            and not (lengths or graphemes)
            and enum is None
            and const is None
        ):
            format_only = check_format

            def validate_format(value: Any) -> None:
                if not isinstance(value, str):
                    raise _fail(f"must be a string, got {_describe(value)}")
                problem = format_only(value)
                if problem is not None:
                    raise _fail(problem)

            return validate_format
        if (
            enum is not None
            and check_format is None
            and const is None
            and not (lengths or graphemes)
        ):
            members = enum

            def validate_enum(value: Any) -> None:
                if not isinstance(value, str):
                    raise _fail(f"must be a string, got {_describe(value)}")
                if value not in members:
                    raise _fail(f"must be one of: {enum_text}")

            return validate_enum

        def validate(value: Any) -> None:
            if not isinstance(value, str):
                raise _fail(f"must be a string, got {_describe(value)}")
            if lengths:
                problem = bytes_within(value, min_len, max_len)
                if problem is not None:
                    raise _fail(problem)
            if graphemes:
                problem = graphemes_within(value, min_g, max_g)
                if problem is not None:
                    raise _fail(problem)
            if enum is not None and value not in enum:
                raise _fail(f"must be one of: {enum_text}")
            if const is not None and value != const:
                raise _fail(f"must be {const!r}")
            if check_format is not None:
                problem = check_format(value)
                if problem is not None:
                    raise _fail(problem)

        return validate

    def _bytes(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        min_len = schema.get("minLength")
        max_len = schema.get("maxLength")

        def validate(value: Any) -> None:
            encoded = value.get("$bytes") if isinstance(value, dict) else None
            if not isinstance(encoded, str) or len(value) != 1:
                raise _fail('must be bytes ({"$bytes": "<base64>"})')
            try:
                raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise _fail("$bytes must be base64", "$bytes") from None
            if max_len is not None and len(raw) > max_len:
                raise _fail(f"must be at most {max_len} bytes")
            if min_len is not None and len(raw) < min_len:
                raise _fail(f"must be at least {min_len} bytes")

        return validate

    def _cid_link(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        check_cid = FORMATS["cid"]

        def validate(value: Any) -> None:
            link = value.get("$link") if isinstance(value, dict) else None
            if not isinstance(link, str) or len(value) != 1:
                raise _fail('must be a CID link ({"$link": "<cid>"})')
            if check_cid(link) is not None:
                raise _fail("must be a CID", "$link")

        return validate

    def _blob(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        accept = schema.get("accept")
        accepts = mime_matcher(accept) if accept else None
        accept_text = ", ".join(accept) if accept else ""
        max_size = schema.get("maxSize")
        check_cid = FORMATS["cid"]

        def validate(value: Any) -> None:
            if not isinstance(value, dict):
                raise _fail(f"must be a blob, got {_describe(value)}")
            kind = value.get("$type")
            size: Any = None
            if kind == "blob":
                ref = value.get("ref")
                link = ref.get("$link") if isinstance(ref, dict) else None
                if not isinstance(link, str) or check_cid(link) is not None:
                    raise _fail("must be a CID link", "ref")
                size = value.get("size")
                if type(size) is not int or size < 0:
                    raise _fail("must be a non-negative integer", "size")
            elif kind is None and "cid" in value:
                # Legacy blob form from early records: no size, plain CID string.
                cid = value.get("cid")
                if not isinstance(cid, str) or check_cid(cid) is not None:
                    raise _fail("must be a CID", "cid")
            else:
                raise _fail('must be a blob ({"$type": "blob", ...})')
            mime = value.get("mimeType")
            if not isinstance(mime, str) or not mime:
                raise _fail("must be a MIME type", "mimeType")
            if accepts is not None and not accepts(mime):
                raise _fail(f"{shown(mime)} is not accepted (allowed: {accept_text})", "mimeType")
            if max_size is not None and size is not None and size > max_size:
                raise _fail(f"blob is {size} bytes; at most {max_size} allowed", "size")

        return validate

    def _array(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        min_len = schema.get("minLength")
        max_len = schema.get("maxLength")
        item = self.field(schema.get("items"), nsid, f"{where}.items")

        def validate(value: Any) -> None:
            if not isinstance(value, list):
                raise _fail(f"must be an array, got {_describe(value)}")
            n = len(value)
            if max_len is not None and n > max_len:
                raise _fail(f"must have at most {max_len} items, got {n}")
            if min_len is not None and n < min_len:
                raise _fail(f"must have at least {min_len} items, got {n}")
            for index, element in enumerate(value):
                try:
                    item(element)
                except _Invalid as err:
                    err.segments.append(index)
                    raise

        return validate

    def _object(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict):
            raise LexiconSchemaError(f"{where}: properties must be an object")
        required = tuple(schema.get("required") or ())
        nullable = frozenset(schema.get("nullable") or ())
        for name in (*required, *nullable):
            if name not in properties:
                raise LexiconSchemaError(f"{where}: {name!r} is not a declared property")
        checks = {
            name: self.field(sub, nsid, f"{where}.{name}") for name, sub in properties.items()
        }

        def validate(value: Any) -> None:
            if not isinstance(value, dict):
                raise _fail(f"must be an object, got {_describe(value)}")
            for name in required:
                if name not in value:
                    raise _fail("required field missing", name)
            # Walk the value's keys, not the schema's: records set few of their optional fields.
            for name, element in value.items():
                check = checks.get(name)
                if check is None:
                    continue
                if element is None:
                    if name in nullable:
                        continue
                    raise _fail("must not be null", name)
                try:
                    check(element)
                except _Invalid as err:
                    err.segments.append(name)
                    raise

        return validate

    def _ref(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        target = schema.get("ref")
        if not isinstance(target, str):
            raise LexiconSchemaError(f"{where}: ref must be a string")
        return self.ref(target, nsid)

    def _union(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        refs = schema.get("refs")
        if not isinstance(refs, list):
            raise LexiconSchemaError(f"{where}: union refs must be a list")
        closed = bool(schema.get("closed", False))
        members = {full_ref(ref, nsid): self.ref(ref, nsid) for ref in refs}
        names = ", ".join(key.removesuffix("#main") for key in members)

        def validate(value: Any) -> None:
            if not isinstance(value, dict):
                raise _fail(f"must be an object, got {_describe(value)}")
            kind = value.get("$type")
            if not isinstance(kind, str) or not kind:
                raise _fail("union member must have a $type", "$type")
            check = members.get(normalize_type(kind))
            if check is None:
                if closed:
                    raise _fail(f"{shown(kind)} is not one of: {names}", "$type")
                return
            check(value)

        return validate

    def _unknown(self, schema: JsonDict, nsid: str, where: str) -> Validator:
        def validate(value: Any) -> None:
            if not isinstance(value, dict):
                raise _fail(f"must be an object, got {_describe(value)}")

        return validate

    # -- records -----------------------------------------------------------

    def record(self, nsid: str) -> Validator:
        """Validator for a record's main definition, checking ``$type`` when present."""
        body = self.ref(f"{nsid}#main", nsid)
        accepted = {nsid, f"{nsid}#main"}

        def validate(value: Any) -> None:
            if isinstance(value, dict):
                kind = value.get("$type", nsid)
                if not isinstance(kind, str) or kind not in accepted:
                    raise _fail(
                        f"record type {shown(kind)} does not match collection {nsid}", "$type"
                    )
            body(value)

        return validate
