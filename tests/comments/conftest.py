from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from quart_trio import QuartTrio

from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.config import Settings, test_settings
from coves.context import AppContext
from coves.db import Database
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from coves.xrpc.app import create_app

NSID = "social.coves.community.comment.getComments"


class BearerDidAuthenticator:
    """Accepts ``Authorization: Bearer <did>``: a stand-in for the real verifiers."""

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token.startswith("did:"):
            raise AuthFailure("bad_token", "invalid token")
        return Viewer(did=token, method="unverified")


@dataclass
class Response:
    status: int
    body: Any
    headers: Mapping[str, str]


class Client:
    """getComments in process; every success is checked against the output lexicon."""

    def __init__(self, app: QuartTrio, lexicons: LexiconRegistry | None = None) -> None:
        self._client = app.test_client()
        self._lexicons = lexicons

    async def get(
        self,
        params: Mapping[str, Any] | list[tuple[str, Any]],
        *,
        viewer: str | None = None,
    ) -> Response:
        headers = {"Authorization": f"Bearer {viewer}"} if viewer else {}
        items = list(params.items()) if isinstance(params, Mapping) else params
        query = [(k, str(v)) for k, v in items if v is not None]
        with trio.fail_after(10):
            response = await self._client.get(f"/xrpc/{NSID}", query_string=query, headers=headers)
            body = await response.get_json()
        return Response(response.status_code, body, response.headers)

    async def post_raw(self) -> Response:
        with trio.fail_after(10):
            response = await self._client.post(f"/xrpc/{NSID}", json={})
            body = await response.get_json()
        if response.status_code == 200 and self._lexicons is not None:
            self._lexicons.validate_output(NSID, body)
        return Response(response.status_code, body, response.headers)


@pytest.fixture
def comment_settings() -> Settings:
    return test_settings()


@pytest.fixture(scope="session")
def comment_lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


@pytest.fixture
def comment_ctx(
    comment_settings: Settings, db: Database, comment_lexicons: LexiconRegistry
) -> AppContext:
    """As served: parameters are decoded by the lexicon layer before the handler runs."""
    return AppContext(
        settings=comment_settings,
        db=db,
        metrics=Metrics(),
        authenticator=BearerDidAuthenticator(),
        lexicons=comment_lexicons,
    )


@pytest.fixture
def client(comment_ctx: AppContext, comment_lexicons: LexiconRegistry) -> Client:
    return Client(create_app(comment_ctx), comment_lexicons)


@pytest.fixture(params=[True, False], ids=["lexicon", "raw"])
def bare_client(
    request: pytest.FixtureRequest, comment_settings: Settings, comment_lexicons: LexiconRegistry
) -> Client:
    """An app whose database is never opened: for requests refused before any query.

    Run with and without the lexicon layer: the handler validates on its own too.
    """
    unopened = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=1)
    ctx = AppContext(
        settings=comment_settings,
        db=unopened,
        metrics=Metrics(),
        authenticator=BearerDidAuthenticator(),
        lexicons=comment_lexicons if request.param else None,
    )
    return Client(create_app(ctx))
