from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from quart_trio import QuartTrio

from coves.config import Settings
from coves.context import AppContext
from coves.db import Database
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from coves.xrpc.app import create_app
from tests.support.auth import FakeAuthenticator, auth_header
from tests.support.factories import Factory


@pytest.fixture
def factory(db: Database) -> Factory:
    return Factory(db)


@pytest.fixture(scope="session")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


@pytest.fixture
def read_ctx(settings: Settings, db: Database, lexicons: LexiconRegistry) -> AppContext:
    settings = settings.replace(
        rate_limit_general=100_000, rate_limit_comments=100_000, rate_limit_search=100_000
    )
    return AppContext(
        settings=settings,
        db=db,
        metrics=Metrics(),
        authenticator=FakeAuthenticator(),
        lexicons=lexicons,
    )


@pytest.fixture
def app(read_ctx: AppContext) -> QuartTrio:
    return create_app(read_ctx)


class Client:
    """Calls XRPC methods on the app in-process and decodes the JSON body."""

    def __init__(self, app: QuartTrio, lexicons: LexiconRegistry) -> None:
        self._client = app.test_client()
        self._lexicons = lexicons

    async def get(
        self, nsid: str, params: Mapping[str, Any] | None = None, *, viewer: str | None = None
    ) -> tuple[int, Any]:
        headers = auth_header(viewer) if viewer else {}
        query: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            for item in value if isinstance(value, list) else [value]:
                query.append((key, str(item)))
        from urllib.parse import urlencode

        response = await self._client.get(f"/xrpc/{nsid}?{urlencode(query)}", headers=headers)
        body = orjson.loads(await response.get_data())
        if response.status_code == 200 and self._lexicons.has(nsid):
            # Every successful response must match the method's output lexicon.
            self._lexicons.validate_output(nsid, body)
        return response.status_code, body


@pytest.fixture
def client(app: QuartTrio, lexicons: LexiconRegistry) -> Client:
    return Client(app, lexicons)
