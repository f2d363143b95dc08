"""Decode XRPC query-string parameters against a lexicon ``params`` schema.

Query strings carry only text, so each declared parameter is parsed into its
lexicon type (integers strictly: no signs-with-spaces or underscores that
``int()`` would forgive), then checked with the same compiled validators as
record fields. Defaults are filled in so handlers never re-derive them;
parameters the lexicon does not declare are dropped, and an empty value
(``cursor=``) counts as absent. A ``limit`` above its maximum is clamped to
the maximum (clients ask for more than an endpoint serves, e.g. the web
sidebar's ``limit=500``); below its minimum it is still refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from coves.errors import XRPCError
from coves.lexicon._compile import Compiler, JsonDict, Validator
from coves.lexicon.errors import LexiconSchemaError, _Invalid, shown

INTEGER_RE = re.compile(r"^-?[0-9]{1,18}$")
PARAM_TYPES = frozenset({"boolean", "integer", "string", "unknown"})

Parser = Callable[[str], Any]
ParamsDecoder = Callable[[Mapping[str, list[str]]], dict[str, Any]]


def _parse_integer(text: str) -> int:
    if INTEGER_RE.match(text) is None:
        raise _Invalid(f"must be an integer, got {shown(text)}")
    return int(text)


def _parse_boolean(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise _Invalid(f"must be true or false, got {shown(text)}")


def _parse_string(text: str) -> str:
    return text


PARSERS: Mapping[str, Parser] = {
    "integer": _parse_integer,
    "boolean": _parse_boolean,
    "string": _parse_string,
    "unknown": _parse_string,
}


def _bad(name: str, problem: str) -> XRPCError:
    return XRPCError(400, "InvalidRequest", f"{name}: {problem}")


def _scalar(
    compiler: Compiler, schema: JsonDict, nsid: str, where: str
) -> tuple[Parser, Validator | None]:
    kind = schema.get("type")
    if kind not in PARAM_TYPES:
        raise LexiconSchemaError(f"{where}: parameters cannot be of type {kind!r}")
    check = None if kind == "unknown" else compiler.field(schema, nsid, where)
    return PARSERS[kind], check


def compile_params(compiler: Compiler, schema: Any, nsid: str) -> ParamsDecoder:
    if schema is None:
        return lambda raw: {}
    if not isinstance(schema, dict) or schema.get("type") != "params":
        raise LexiconSchemaError(f"{nsid}: parameters must be of type params")
    properties = schema.get("properties") or {}
    required = frozenset(schema.get("required") or ())
    for name in required:
        if name not in properties:
            raise LexiconSchemaError(f"{nsid}: required parameter {name!r} is not declared")

    decoders: list[tuple[str, Callable[[list[str]], Any], Any]] = []
    for name, prop in properties.items():
        where = f"{nsid}.parameters.{name}"
        if not isinstance(prop, dict):
            raise LexiconSchemaError(f"{where}: schema must be an object")
        decoders.append((name, _decoder(compiler, prop, nsid, where), prop.get("default")))

    def decode(raw: Mapping[str, list[str]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, decode_one, default in decoders:
            values = raw.get(name)
            if values and "" in values:
                # Clients commonly serialise an unset option as ``name=``.
                values = [value for value in values if value != ""]
            if not values:
                if name in required:
                    raise _bad(name, "required parameter missing")
                if default is not None:
                    out[name] = list(default) if isinstance(default, list) else default
                continue
            try:
                out[name] = decode_one(values)
            except _Invalid as err:
                raise _bad(name + err.path(), err.message) from None
        return out

    return decode


def _decoder(
    compiler: Compiler, prop: JsonDict, nsid: str, where: str
) -> Callable[[list[str]], Any]:
    if prop.get("type") == "array":
        parse, check = _scalar(compiler, prop.get("items") or {}, nsid, f"{where}.items")
        min_len = prop.get("minLength")
        max_len = prop.get("maxLength")

        def decode_array(values: list[str]) -> list[Any]:
            if max_len is not None and len(values) > max_len:
                raise _Invalid(f"at most {max_len} values allowed, got {len(values)}")
            if min_len is not None and len(values) < min_len:
                raise _Invalid(f"at least {min_len} values required, got {len(values)}")
            out = []
            for index, text in enumerate(values):
                try:
                    value = parse(text)
                    if check is not None:
                        check(value)
                except _Invalid as err:
                    err.segments.append(index)
                    raise
                out.append(value)
            return out

        return decode_array

    parse, check = _scalar(compiler, prop, nsid, where)
    ceiling = (
        prop.get("maximum") if where.endswith(".limit") and prop.get("type") == "integer" else None
    )

    def decode_scalar(values: list[str]) -> Any:
        if len(values) > 1:
            raise _Invalid("must be given once")
        value = parse(values[0])
        if isinstance(ceiling, int) and value > ceiling:
            value = ceiling
        if check is not None:
            check(value)
        return value

    return decode_scalar
