"""The one base64url codec: round trips, and one spelling per value."""

from __future__ import annotations

import os

import pytest

from coves.base64url import b64url_decode, b64url_encode
from coves.cursors import CursorCodec
from coves.errors import XRPCError
from coves.secrets import Secret


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 31, 32, 33, 64])
def test_round_trip_without_padding(size: int) -> None:
    data = os.urandom(size)
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize(
    "text",
    [
        "YQ==",  # padded
        "YQ=",
        "a+b/",  # the standard alphabet, not the URL-safe one
        "YWJj\n",  # a trailing newline
        " YWJj",
        "YW Jj",
        "Y",  # one character cannot encode a byte
        "YWJjé",
    ],
)
def test_anything_but_unpadded_base64url_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not base64url"):
        b64url_decode(text)


def test_a_cursor_with_a_sloppy_body_is_invalid_not_cleaned_up() -> None:
    """The cursor's MAC covers its text, and its body must decode strictly as well."""
    codec = CursorCodec(Secret("x" * 32))
    cursor = codec.encode("feed", {"o": 1})
    assert codec.decode("feed", cursor) == {"o": 1}
    body, _, _mac = cursor.partition(".")
    for sloppy in (body + "=", body + "\n", body[:-1] + "+"):
        forged = f"{sloppy}.{codec._mac(sloppy)}"  # a correctly signed, sloppy body
        with pytest.raises(XRPCError) as info:
            codec.decode("feed", forged)
        assert info.value.error == "InvalidCursor"
