"""The world posting tests run in: the reference PDS and PLC, Coves' real
context (identity resolution, service-auth verification, API keys, the PDS
client and write-then-index), and a loopback HTTP server for the web pages,
images, oEmbed endpoints and well-known files that posting fetches."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from coves.aggregators.api_keys import ApiKeys
from coves.aggregators.authorizations import AggregatorAuthorizations
from coves.aggregators.registration import AggregatorRegistrar
from coves.auth.factory import build_authenticator
from coves.config import Settings
from coves.context import AppContext
from coves.db import Database
from coves.identity.factory import build_fetcher, build_resolver
from coves.ingest.build import production_indexer
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.oauth.service import build_oauth_service
from coves.pds import BearerAuth, PdsAuth, PdsConnections, PdsLimits, RepoWriter
from coves.pds.services import PdsServices
from coves.posting.build import build_post_service
from coves.posting.pds_repo import HostedCredentials, PdsCommunityRepo
from coves.secrets import Secret
from coves.unfurl.providers import OEmbedProvider
from coves.xrpc.app import create_app
from tests.oauth.conftest import FRONTEND_CALLBACK, PUBLIC
from tests.oauth.live import Handles
from tests.posting.client import Client
from tests.support.http_server import TestHTTPServer, http_server
from tests.support.oauth_browser import Browser
from tests.support.pds import PdsAccount, TestPds

INSTANCE_DID = "did:web:coves.test"
DOMAIN = "coves.test"
PROFILE = "social.coves.community.profile"
POST = "social.coves.community.post"


@dataclass(frozen=True)
class Community:
    """A community Coves hosts (created through social.coves.community.create)."""

    did: str
    handle: str
    name: str


@dataclass
class World:
    pds: TestPds
    srv: TestHTTPServer
    db: Database
    ctx: AppContext
    client: Client
    transport: httpx.AsyncBaseTransport
    app: Any
    handles: Handles

    async def user(self) -> PdsAccount:
        account = await self.pds.create_account()
        self.handles.records[account.handle] = account.did
        return account

    async def sign_in(self, account: PdsAccount) -> str:
        """The sealed session token the mobile app gets from signing in through Coves
        (the real OAuth flow with the PDS's own authorization server)."""
        path = f"/oauth/mobile/login?handle={account.handle}&redirect_uri=social.coves:/callback"
        landing = await Browser(self.app.test_client()).sign_in(
            path, account.handle, account.password
        )
        return landing.query["token"]

    async def community(
        self,
        creator: PdsAccount,
        *,
        visibility: str = "public",
        rules: dict[str, Any] | None = None,
    ) -> Community:
        """A community created through Coves by ``creator``: an account of its own on
        the PDS, its credentials sealed in Coves, its profile written and indexed."""
        name = self.pds.unique_name("g")[:16]
        body: dict[str, Any] = {"name": name, "visibility": visibility}
        if rules is not None:
            body["contentRules"] = rules
        status, out = await self.call("social.coves.community.create", body, as_=creator)
        assert status == 200, out
        return Community(did=out["did"], handle=out["handle"], name=name)

    async def foreign_community(self, creator: PdsAccount) -> Community:
        """A community indexed here whose account Coves does not hold (as one hosted by
        another instance would be): its profile written by the account itself."""
        account = await self.pds.create_account(self.pds.unique_name("f"))
        record = {
            "$type": PROFILE,
            "name": account.handle.split(".")[0],
            "createdBy": creator.did,
            "hostedBy": INSTANCE_DID,
            "visibility": "public",
            "createdAt": "2025-01-01T00:00:00.000Z",
        }
        await self.ctx.pds.writer.put(
            self.ctx.pds.instance,
            BearerAuth(account.access_jwt),
            repo=account.did,
            collection=PROFILE,
            rkey="self",
            record=record,
            operation="create",
        )
        return Community(account.did, account.handle, account.handle.split(".")[0])

    async def community_auth(self, community: Community) -> PdsAuth:
        """The community's own session, as the hosting service keeps it."""
        sessions = self.ctx.hosting.sessions
        return sessions.auth(await sessions.load_did(community.did))

    async def token(self, account: PdsAccount, nsid: str) -> str:
        """A service-auth JWT the account's PDS signs for Coves and one method."""
        response = await self.pds.xrpc(
            "GET",
            "com.atproto.server.getServiceAuth",
            token=account.access_jwt,
            params={"aud": INSTANCE_DID, "lxm": nsid},
        )
        response.raise_for_status()
        return str(response.json()["token"])

    async def call(self, nsid: str, body: Any, *, as_: PdsAccount) -> tuple[int, Any]:
        return await self.client.post(nsid, body, token=await self.token(as_, nsid))

    async def get(
        self, nsid: str, params: dict[str, Any], *, as_: PdsAccount | None = None
    ) -> tuple[int, Any]:
        token = await self.token(as_, nsid) if as_ is not None else None
        return await self.client.get(nsid, params, token=token)

    async def upload(
        self, community: str, data: bytes, *, as_: PdsAccount, content_type: str = "image/png"
    ) -> tuple[int, Any]:
        nsid = "social.coves.community.post.uploadImage"
        return await self.client.raw(
            nsid,
            data,
            params={"community": community},
            token=await self.token(as_, nsid),
            content_type=content_type,
        )

    async def record(self, uri: str) -> dict[str, Any]:
        """The record as the PDS serves it (com.atproto.repo.getRecord)."""
        _, _, rest = uri.partition("at://")
        repo, collection, rkey = rest.split("/")
        response = await self.pds.xrpc(
            "GET",
            "com.atproto.repo.getRecord",
            params={"repo": repo, "collection": collection, "rkey": rkey},
        )
        return {"status": response.status_code, **response.json()}


@asynccontextmanager
async def posting_world(
    settings: Settings,
    db: Database,
    pds: TestPds,
    lexicons: LexiconRegistry,
    *,
    oembed: list[OEmbedProvider] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    settings = settings.replace(
        instance_did=INSTANCE_DID,
        instance_domain=DOMAIN,
        pds_url=pds.url,
        plc_url=pds.plc_url,
        allow_private_network_fetch=True,
        rate_limit_general=100_000,
        pds_admin_password=Secret(pds.admin_password),
        community_creates_per_day=1000,
        appview_public_url=PUBLIC,
        oauth_web_redirects=(FRONTEND_CALLBACK, PUBLIC + "/"),
        **overrides,
    )
    metrics = Metrics()
    async with http_server() as srv:
        fetcher = build_fetcher(settings)
        handles = Handles()
        identity = build_resolver(
            settings, db, fetcher, metrics=metrics, txt_lookup=handles.txt_lookup
        )
        oauth = build_oauth_service(settings, db, fetcher, identity)
        api_keys = ApiKeys(db)
        the_transport = transport or httpx.AsyncHTTPTransport()
        probe = AppContext(settings=settings, db=db, lexicons=lexicons, metrics=metrics)
        connections = PdsConnections(
            metrics=metrics, transport=the_transport, limits=PdsLimits(backoff=0.05, deadline=10.0)
        )
        pds_services = PdsServices(
            connections=connections,
            writer=RepoWriter(production_indexer(probe)),
            instance_url=pds.url,
        )
        outbound = SafeFetcher(resolve=srv.resolve, allow_private=True)
        base = AppContext(
            settings=settings,
            db=db,
            metrics=metrics,
            authenticator=build_authenticator(
                settings, identity, fetcher, sessions=oauth.verifier, api_keys=api_keys
            ),
            oauth=oauth,
            lexicons=lexicons,
            identity=identity,
            pds_services=pds_services,
            api_keys=api_keys,
            aggregators=AggregatorRegistrar(
                db,
                outbound,
                identity,
                well_known_url=f"http://{{domain}}:{srv.port}/.well-known/atproto-did",
            ),
        )
        # The communities' sealed, refreshed sessions of the hosting service.
        repo = PdsCommunityRepo(pds_services, HostedCredentials(base.hosting.sessions))
        ctx = dataclasses.replace(
            base,
            posts=build_post_service(
                settings=settings,
                db=db,
                read=base.read,
                lexicons=lexicons,
                repo=repo,
                fetcher=outbound,
                identity=identity,
                metrics=metrics,
                **({"oembed": oembed} if oembed is not None else {}),
            ),
            authorizations=AggregatorAuthorizations(db, base.read, repo),
        )
        app = create_app(ctx)
        try:
            yield World(
                pds=pds,
                srv=srv,
                db=db,
                ctx=ctx,
                client=Client(app, lexicons),
                transport=the_transport,
                app=app,
                handles=handles,
            )
        finally:
            await connections.aclose()
            await outbound.aclose()
            await fetcher.aclose()
