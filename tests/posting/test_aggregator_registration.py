"""aggregator.register: the domain serves the DID, and the DID's side agrees."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio

from coves.aggregators.registration import AggregatorRegistrar
from coves.context import AppContext
from coves.db import Database
from coves.identity.resolver import IdentityResolver
from coves.lexicon.registry import LexiconRegistry
from coves.net import SafeFetcher
from coves.xrpc.app import create_app
from tests.posting.client import Client
from tests.support.fake_did import PLC_URL, FakeNetwork
from tests.support.http_server import Reply, TestHTTPServer, http_server

BOT = "did:plc:bot2bot2bot2bot2bot2bot2"
OTHER = "did:plc:other0other0other0other"
DOMAIN = "news-bot.example.test"
REGISTER = "social.coves.aggregator.register"


@dataclass
class World:
    client: Client
    srv: TestHTTPServer
    net: FakeNetwork
    db: Database


@pytest.fixture
async def world(
    posting_ctx: AppContext, db: Database, lexicons: LexiconRegistry
) -> AsyncIterator[World]:
    net = FakeNetwork()
    net.add_plc(BOT, None, DOMAIN)  # the DID document names the domain
    net.add_plc(OTHER, None, "other.example.test")
    async with http_server() as srv:
        srv.route(
            DOMAIN, "/.well-known/atproto-did", Reply(body=BOT.encode(), content_type="text/plain")
        )
        identity = IdentityResolver(
            fetcher=net.fetcher(), plc_url=PLC_URL, db=db, txt_lookup=net.txt_lookup
        )
        registrar = AggregatorRegistrar(
            db,
            SafeFetcher(resolve=srv.resolve, allow_private=True),
            identity,
            well_known_url=f"http://{{domain}}:{srv.port}/.well-known/atproto-did",
        )
        ctx = dataclasses.replace(posting_ctx, aggregators=registrar)
        yield World(Client(create_app(ctx), lexicons), srv, net, db)


async def test_register_records_the_aggregator_once(world: World) -> None:
    with trio.fail_after(20):
        status, body = await world.client.post(
            REGISTER, {"did": BOT, "domain": f"https://{DOMAIN}/"}
        )
        assert status == 200, body
        assert body["did"] == BOT and body["handle"] == DOMAIN
        assert "social.coves.aggregator.service/self" in body["message"]
        row = await world.db.fetchrow("SELECT domain, handle FROM aggregator_registrations")
        assert row == {"domain": DOMAIN, "handle": DOMAIN}
        assert await world.db.fetchval("SELECT count(*) FROM users WHERE did = %s", (BOT,)) == 1
        status, body = await world.client.post(REGISTER, {"did": BOT, "domain": DOMAIN})
        assert (status, body["error"]) == (409, "AlreadyRegistered")


@pytest.mark.parametrize(
    ("served", "reply_status"),
    [(OTHER, 200), ("", 404), ("x" * 5000, 200)],
    ids=["another-did", "missing", "too-large"],
)
async def test_domain_that_does_not_serve_the_did_is_refused(
    world: World, served: str, reply_status: int
) -> None:
    world.srv.route(
        DOMAIN,
        "/.well-known/atproto-did",
        Reply(reply_status, served.encode(), content_type="text/plain"),
    )
    with trio.fail_after(20):
        status, body = await world.client.post(REGISTER, {"did": BOT, "domain": DOMAIN})
    assert (status, body["error"]) == (401, "DomainVerificationFailed")
    assert await world.db.fetchval("SELECT count(*) FROM aggregator_registrations") == 0


async def test_unreachable_domain_is_refused(world: World) -> None:
    with trio.fail_after(20):
        status, body = await world.client.post(
            REGISTER, {"did": BOT, "domain": "nothing-here.example.test"}
        )
    assert (status, body["error"]) == (401, "DomainVerificationFailed")


async def test_serving_a_strangers_did_is_not_enough(world: World) -> None:
    """Anyone can serve any DID string: the DID's own document (or a sign-in as the
    DID) must agree, or a stranger could register someone else's account."""
    stranger = "impostor.example.test"
    world.srv.route(stranger, "/.well-known/atproto-did", Reply(body=BOT.encode()))
    with trio.fail_after(20):
        status, body = await world.client.post(REGISTER, {"did": BOT, "domain": stranger})
        assert (status, body["error"]) == (401, "DomainVerificationFailed")
        assert "alsoKnownAs" in body["message"]
        # Signed in as someone else: refused outright.
        status, body = await world.client.post(
            REGISTER, {"did": BOT, "domain": stranger}, viewer=OTHER
        )
        assert (status, body["error"]) == (403, "Forbidden")
        # Signed in as the DID itself, another domain it controls is fine.
        status, body = await world.client.post(
            REGISTER, {"did": BOT, "domain": stranger}, viewer=BOT
        )
        assert status == 200, body


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"did": "did:key:zabc", "domain": DOMAIN}, "InvalidDID"),
        ({"did": "not a did", "domain": DOMAIN}, "InvalidDID"),
        ({"did": BOT, "domain": f"http://{DOMAIN}"}, "InvalidDID"),
        ({"did": BOT, "domain": "127.0.0.1"}, "InvalidDID"),
        ({"did": BOT, "domain": "bad domain"}, "InvalidDID"),
        ({"did": BOT}, "InvalidDID"),
        ({"domain": DOMAIN}, "InvalidDID"),
    ],
)
async def test_malformed_input_is_a_clear_400(
    world: World, payload: dict[str, str], error: str
) -> None:
    with trio.fail_after(20):
        status, body = await world.client.post(REGISTER, payload)
    assert (status, body["error"]) == (400, error)
    assert world.srv.requests == []  # nothing fetched for input that cannot be right


async def test_did_that_does_not_resolve(world: World) -> None:
    unknown = "did:plc:unknown0unknown0unknown0"
    world.srv.route(DOMAIN, "/.well-known/atproto-did", Reply(body=unknown.encode()))
    with trio.fail_after(20):
        status, body = await world.client.post(REGISTER, {"did": unknown, "domain": DOMAIN})
    assert (status, body["error"]) == (400, "DIDResolutionFailed")


async def test_registration_is_rate_limited_per_client(world: World) -> None:
    with trio.fail_after(30):
        statuses = []
        for _ in range(11):
            status, _body = await world.client.post(
                REGISTER, {"did": "did:key:x", "domain": DOMAIN}
            )
            statuses.append(status)
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
