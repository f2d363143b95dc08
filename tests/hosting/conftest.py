from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from quart_trio import QuartTrio

from coves.config import Settings
from coves.context import AppContext
from coves.db import Database
from coves.lexicon.registry import LexiconRegistry
from coves.secrets import Secret
from coves.xrpc.app import create_app
from tests.support.auth import FakeAuthenticator, auth_header
from tests.support.database import TestPostgres
from tests.support.pds import TestPds

INSTANCE_DID = "did:web:coves.test"
DOMAIN = "coves.test"

Hook = Callable[[httpx.Request, httpx.Response | None], Awaitable[None]]


class HookedTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport with test hooks around chosen XRPC methods (fault timing)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.before: dict[str, Hook] = {}
        self.after: dict[str, Hook] = {}
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.removeprefix("/xrpc/")
        self.sent.append(nsid)
        hook = self.before.pop(nsid, None)
        if hook is not None:
            await hook(request, None)
        response = await self.inner.handle_async_request(request)
        hook = self.after.pop(nsid, None)
        if hook is not None:
            await response.aread()
            await hook(request, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="session")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


@pytest.fixture
def hosting_settings(settings: Settings, pds: TestPds) -> Settings:
    return settings.replace(
        instance_did=INSTANCE_DID,
        instance_domain=DOMAIN,
        pds_url=pds.url,
        pds_admin_password=Secret(pds.admin_password),
        rate_limit_general=100_000,
        community_creates_per_day=1000,
    )


@pytest.fixture
def transport() -> HookedTransport:
    return HookedTransport()


@pytest.fixture
async def hosting_ctx(
    hosting_settings: Settings, db: Database, lexicons: LexiconRegistry, transport: HookedTransport
) -> AsyncIterator[AppContext]:
    ctx = AppContext(
        settings=hosting_settings,
        db=db,
        authenticator=FakeAuthenticator(),
        lexicons=lexicons,
        pds_transport=transport,
    )
    try:
        yield ctx
    finally:
        await ctx.pds.aclose()


@pytest.fixture
def app(hosting_ctx: AppContext) -> QuartTrio:
    return create_app(hosting_ctx)


class Client:
    def __init__(self, app: QuartTrio, lexicons: LexiconRegistry) -> None:
        self._client = app.test_client()
        self._lexicons = lexicons

    async def post(self, nsid: str, body: Any, *, viewer: str | None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **(auth_header(viewer) if viewer else {})}
        response = await self._client.post(
            f"/xrpc/{nsid}", data=orjson.dumps(body), headers=headers
        )
        out = orjson.loads(await response.get_data())
        if response.status_code == 200 and self._lexicons.has(nsid):
            self._lexicons.validate_output(nsid, out)
        return response.status_code, out

    async def get(self, nsid: str, viewer: str | None = None, **params: str) -> tuple[int, Any]:
        from urllib.parse import urlencode

        headers = auth_header(viewer) if viewer else {}
        response = await self._client.get(f"/xrpc/{nsid}?{urlencode(params)}", headers=headers)
        return response.status_code, orjson.loads(await response.get_data())


@pytest.fixture
def client(app: QuartTrio, lexicons: LexiconRegistry) -> Client:
    return Client(app, lexicons)


CommandRun = Callable[..., Awaitable[tuple[int, list[dict[str, Any]], str]]]


@pytest.fixture
async def communities_command(db: Database, pg: TestPostgres, tmp_path: Path) -> CommandRun:
    """Run ``coves communities ARGS`` as an operator would, on this test's database:
    (exit status, the JSON lines it printed, stderr)."""
    database = await db.fetchval("SELECT current_database()")
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        "DATABASE_URL": pg.conninfo(database),
        "LOG_LEVEL": "warning",
    }

    def run(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coves", "communities", *args],
            check=False,
            cwd=tmp_path,  # no .env there: the environment above is all it gets
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    async def command(*args: str) -> tuple[int, list[dict[str, Any]], str]:
        done = await trio.to_thread.run_sync(run, args)
        lines = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return done.returncode, lines, done.stdout + done.stderr

    return command
