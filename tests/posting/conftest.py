from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coves.aggregators.api_keys import ApiKeys
from coves.auth.base import AuthInput, Viewer
from coves.config import Settings
from coves.context import AppContext
from coves.db import Database
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from tests.posting.world import World, posting_world
from tests.support.auth import FakeAuthenticator
from tests.support.pds import TestPds


@pytest.fixture(scope="session")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


class KeysOrFake:
    """API keys checked for real (the production ApiKeys); other tokens as the
    route tests' fake (``Bearer test:<did>``)."""

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys
        self.fake = FakeAuthenticator()

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ckapi_"):
            return await self.keys.authenticate(header.removeprefix("Bearer "), request)
        return await self.fake.authenticate(request)


@pytest.fixture
def api_keys(db: Database) -> ApiKeys:
    return ApiKeys(db)


@pytest.fixture
async def world(
    settings: Settings, db: Database, pds: TestPds, lexicons: LexiconRegistry
) -> AsyncIterator[World]:
    """Coves on the reference PDS (see tests/posting/world.py), default settings."""
    async with posting_world(settings, db, pds, lexicons) as w:
        yield w


@pytest.fixture
def posting_ctx(
    settings: Settings, db: Database, lexicons: LexiconRegistry, api_keys: ApiKeys
) -> AppContext:
    return AppContext(
        settings=settings.replace(rate_limit_general=100_000),
        db=db,
        metrics=Metrics(),
        authenticator=KeysOrFake(api_keys),
        lexicons=lexicons,
        api_keys=api_keys,
    )
