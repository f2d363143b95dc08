"""Defensive decoding of query parameters.

The dispatcher decodes parameters from the lexicon when one is loaded; until
then (and as a second line of defence) handlers read them through these
helpers, which accept either the decoded value or the raw string and turn
anything unusable into 400 ``InvalidRequest`` rather than a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.errors import invalid_request


def one_str(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        if len(value) != 1:
            raise invalid_request(f"{name} must be given once")
        value = value[0]
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise invalid_request(f"{name} parameter is required")
        return None
    if not isinstance(value, str):
        value = str(value)
    return value.strip()


def many_str(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def int_param(params: Mapping[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    raw = one_str(params, name)
    if raw is None:
        return default
    if isinstance(params.get(name), bool):
        raise invalid_request(f"{name} must be an integer")
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(f"{name} must be an integer") from None
    if value < low or value > high:
        raise invalid_request(f"{name} must be between {low} and {high}")
    return value


def limit_param(params: Mapping[str, Any], *, default: int, high: int) -> int:
    """A page size: above ``high`` is clamped to it (as the original AppView does, and
    as clients such as the web sidebar's ``limit=500`` rely on); below 1 is a 400."""
    raw = one_str(params, "limit")
    if raw is None:
        return default
    if isinstance(params.get("limit"), bool):
        raise invalid_request("limit must be an integer")
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request("limit must be an integer") from None
    if value < 1:
        raise invalid_request("limit must be at least 1")
    return min(value, high)


def bool_param(params: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    raw = one_str(params, name)
    if raw is None:
        return default
    if raw.lower() == "true":
        return True
    if raw.lower() == "false":
        return False
    raise invalid_request(f"{name} must be true or false")


def choice_param(
    params: Mapping[str, Any], name: str, options: tuple[str, ...], default: str | None
) -> str | None:
    raw = one_str(params, name)
    if raw is None:
        return default
    if raw not in options:
        raise invalid_request(f"{name} must be one of {', '.join(options)}")
    return raw
