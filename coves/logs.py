"""Structured logging: structlog everywhere, with redaction as the last word.

Redaction is a processor that runs after every other processor and just
before rendering, so nothing a caller binds (or an exception message
carries) reaches the output with a token, password, email or key in it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "[REDACTED]"

_SENSITIVE_KEY = re.compile(
    r"(authorization|cookie|password|passwd|secret|token|jwt|api[_-]?key|private[_-]?key|"
    r"encryption[_-]?key|signing[_-]?key|dpop|email|credential|refresh)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|DPoP|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(\.[A-Za-z0-9_-]*)?")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_KEYISH = re.compile(r"\b[0-9a-fA-F]{64}\b")
# ``password=...`` / ``"token": "..."`` inside free text such as exception messages.
_ASSIGNMENT = re.compile(
    r"""(?P<key>\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key)[\w-]*"""
    r"""["']?\s*[=:]\s*["']?)(?P<value>[^\s"',;&)]+)""",
    re.IGNORECASE,
)


# Anything any pattern above could match contains one of these: text without them (most
# log values: paths, NSIDs, DIDs, counts) is returned after one search instead of six.
_MAYBE_SENSITIVE = re.compile(
    r"eyJ|@|bearer|dpop|basic|password|passwd|secret|token|api[_-]?key|private[_-]?key|"
    r"[0-9a-f]{64}",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    if _MAYBE_SENSITIVE.search(text) is None:
        return text
    text = _ASSIGNMENT.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _EMAIL.sub(REDACTED, text)
    return _KEYISH.sub(REDACTED, text)


def redact_value(key: str, value: Any) -> Any:
    if _SENSITIVE_KEY.search(key) and key not in _SAFE_KEYS:
        return REDACTED if value not in (None, "", False) else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


# Keys that look sensitive but carry no secret (reasons and counts, not values).
_SAFE_KEYS = frozenset({"auth_reason", "auth_method", "token_type", "refresh_reason"})


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = redact_value(key, event_dict[key])
    return event_dict


def configure_logging(
    level: str = "info", fmt: str = "console", stream: TextIO | None = None
) -> None:
    """Configure structlog and route stdlib logging (hypercorn, psycopg) through it.

    Both paths end in the same ProcessorFormatter, so foreign records are
    rendered as JSON in production and redacted exactly like our own.
    """
    numeric = getattr(logging, level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    _Direct.handler, _Direct.json = handler, fmt == "json"
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in ("hypercorn.access", "httpx", "httpcore", "psycopg.pool", "trio-websocket"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class _Direct:
    """Where :func:`write_line` writes: the handler configure_logging installed."""

    handler: logging.StreamHandler[Any] | None = None
    json: bool = False


def write_line(logger: str, event: str, fields: Mapping[str, Any], level: str = "info") -> None:
    """One line, rendered here, through the configured handler: for high-volume logs.

    The structlog chain (LogRecord, processors, a redaction pass over every
    field) costs over a hundred microseconds a line; the access log writes one
    per request, so it renders its own line, in the same format and to the
    same stream. Its caller must hand over fields that are already safe: it
    passes client-controlled text through :func:`redact_text` itself.
    """
    handler = _Direct.handler
    if handler is None:
        get_logger(logger).log(getattr(logging, level.upper()), event, **fields)
        return
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if _Direct.json:
        body = {**fields, "event": event, "level": level, "logger": logger, "timestamp": stamp}
        line = orjson.dumps(body, default=str).decode()
    else:
        pairs = " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
        line = f"{stamp} [{level:<9}] {event:<30} [{logger}] {pairs}"
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:
        # As logging's own emit: a log line never breaks the caller (a closed or
        # full stream is reported on stderr by the logging module, not raised).
        handler.handleError(logging.makeLogRecord({"msg": line, "name": logger}))
    finally:
        handler.release()
