"""Coves wired to the reference PDS and PLC of the test harness, for sign-in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from coves.auth.base import AuthPolicy
from coves.context import AppContext
from coves.db import Database
from coves.identity import IdentityResolver
from coves.identity.factory import build_fetcher
from coves.net import SafeFetcher
from coves.oauth.service import OAuthService
from coves.xrpc.app import create_app
from coves.xrpc.ratelimit import LimitClass, RateLimiter, default_limit_classes
from coves.xrpc.routing import Endpoint, collect_endpoints
from tests.oauth.conftest import WHOAMI, oauth_context, oauth_settings, whoami
from tests.support.oauth_browser import Browser, Landing
from tests.support.pds import PdsAccount, TestPds


@dataclass
class Handles:
    """DNS for the harness's handles: ``_atproto.<handle>`` TXT records."""

    records: dict[str, str] = field(default_factory=dict)

    async def txt_lookup(self, name: str) -> list[str]:
        did = self.records.get(name.removeprefix("_atproto."))
        return [f"did={did}"] if did else []


@dataclass
class Live:
    pds: TestPds
    ctx: AppContext
    service: OAuthService
    app: Any
    handles: Handles
    fetcher: SafeFetcher

    async def account(self) -> PdsAccount:
        account = await self.pds.create_account()
        self.handles.records[account.handle] = account.did
        return account

    def browser(self) -> Browser:
        return Browser(self.app.test_client())

    async def sign_in_web(self, account: PdsAccount, **params: str) -> tuple[Browser, Landing]:
        browser = self.browser()
        query = "&".join(f"{k}={quote(v)}" for k, v in {"handle": account.handle, **params}.items())
        landing = await browser.sign_in(f"/oauth/login?{query}", account.handle, account.password)
        return browser, landing

    async def sign_in_mobile(self, account: PdsAccount) -> Landing:
        browser = self.browser()
        handle = quote(account.handle)
        path = f"/oauth/mobile/login?handle={handle}&redirect_uri=social.coves:/callback"
        return await browser.sign_in(path, account.handle, account.password)


def build_live(
    pds: TestPds, db: Database, *, limiter: RateLimiter | None = None, **settings: Any
) -> Live:
    config = oauth_settings(plc_url=pds.plc_url, **settings)
    fetcher = build_fetcher(config)
    handles = Handles()
    identity = IdentityResolver(
        fetcher=fetcher, plc_url=config.plc_url, txt_lookup=handles.txt_lookup
    )
    ctx = oauth_context(config, db, fetcher, identity)
    service = ctx.oauth
    assert service is not None
    endpoints = {
        **collect_endpoints(),
        WHOAMI: Endpoint(WHOAMI, "query", whoami, AuthPolicy.REQUIRED),
    }
    app = create_app(ctx, endpoints, limiter=limiter)
    return Live(pds, ctx, service, app, handles, fetcher)


@asynccontextmanager
async def open_live(
    pds: TestPds, db: Database, *, limiter: RateLimiter | None = None, **settings: Any
) -> AsyncIterator[Live]:
    live = build_live(pds, db, limiter=limiter, **settings)
    try:
        yield live
    finally:
        await live.fetcher.aclose()
        if live.ctx.user_repos is not None:
            await live.ctx.user_repos.aclose()
        await live.ctx.pds.aclose()


def roomy_limiter(settings: Any, **limits: int) -> RateLimiter:
    """The production limit classes with some raised (tests that make many calls)."""
    classes = [
        LimitClass(c.name, limits.get(c.name, c.limit), c.window)
        for c in default_limit_classes(settings)
    ]
    return RateLimiter(classes)
