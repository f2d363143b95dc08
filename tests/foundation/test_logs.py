"""Redaction: no token, password, email or key reaches a log line, whatever the path."""

from __future__ import annotations

import io
import json
import logging

import pytest

from coves.logs import REDACTED, get_logger, redact_text
from coves.secrets import Secret

JWT = "eyJhbGciOiJFUzI1NksifQ.eyJpc3MiOiJkaWQ6cGxjOmFiYyJ9.c2lnbmF0dXJlLWJ5dGVz"
KEY_HEX = "ab" * 32


def records(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_structlog_values_are_redacted_by_key_and_by_content(log_output: io.StringIO) -> None:
    log = get_logger("test.redaction")
    log.info(
        "request",
        authorization=f"Bearer {JWT}",
        headers={"Authorization": f"DPoP {JWT}", "DPoP": "proof", "Accept": "application/json"},
        user_email="alice@example.com",
        note=f"token was {JWT} for bob@example.org",
        encryption_key="c2VjcmV0",
        password="hunter2",
        url="postgresql://coves:s3cret@db:5432/coves",
        key_material=KEY_HEX,
        auth_reason="expired",
    )
    output = log_output.getvalue()
    for secret in (JWT, "alice@example.com", "bob@example.org", "c2VjcmV0", "hunter2", "s3cret"):
        assert secret not in output, secret
    assert KEY_HEX not in output
    (record,) = records(log_output)
    assert record["authorization"] == REDACTED
    assert record["headers"] == {
        "Authorization": REDACTED,
        "DPoP": REDACTED,
        "Accept": "application/json",
    }
    assert record["auth_reason"] == "expired"  # reasons are safe and useful


def test_stdlib_and_hypercorn_records_are_redacted(log_output: io.StringIO) -> None:
    logging.getLogger("hypercorn.error").error("bad header Authorization: Bearer %s", JWT)
    logging.getLogger("psycopg").warning("connect failed password=topsecret host=db")
    output = log_output.getvalue()
    assert JWT not in output and "topsecret" not in output
    assert len(records(log_output)) == 2  # rendered as JSON lines like our own


def test_exception_messages_and_tracebacks_are_redacted(log_output: io.StringIO) -> None:
    log = get_logger("test.redaction")
    try:
        raise ValueError(f"could not verify Bearer {JWT} for carol@example.net token={KEY_HEX}")
    except ValueError:
        log.exception("verification crashed")
    output = log_output.getvalue()
    assert JWT not in output and "carol@example.net" not in output and KEY_HEX not in output
    assert "verification crashed" in output and "ValueError" in output


def test_secret_repr_never_shows_the_value(log_output: io.StringIO) -> None:
    secret = Secret("do-not-print-me")
    get_logger("test").info("config", value=secret, text=f"{secret}")
    assert "do-not-print-me" not in log_output.getvalue()
    assert "do-not-print-me" not in repr(secret)


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ('{"refresh_token": "abc.def"}', "abc.def"),
        ("api_key=XYZ123&x=1", "XYZ123"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ],
)
def test_redact_text_patterns(text: str, leaked: str) -> None:
    assert leaked not in redact_text(text)
