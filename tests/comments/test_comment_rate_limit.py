"""The "comments" rate-limit class applies on top of the general one."""

from __future__ import annotations

import pytest

from coves.config import Settings, test_settings
from coves.db import Database
from tests.comments import factories as f
from tests.comments.conftest import Client


@pytest.fixture
def comment_settings() -> Settings:
    return test_settings(rate_limit_comments=3, rate_limit_general=100)


async def test_comments_rate_limit_applies(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    for _ in range(3):
        ok = await client.get({"post": post.uri})
        assert ok.status == 200
    assert ok.headers["RateLimit-Limit"] == "3"
    assert ok.headers["RateLimit-Remaining"] == "0"
    refused = await client.get({"post": post.uri})
    assert refused.status == 429
    assert refused.body["error"] == "RateLimitExceeded"
    assert "Retry-After" in refused.headers
    # Bad requests count too: the limit is checked before parameters are read.
    still = await client.get({"post": "junk"})
    assert still.status == 429
