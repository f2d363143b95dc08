"""API keys (shown once, stored hashed, scoped, revocable, budgeted) and the
aggregator queries over indexed service and authorization records."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import trio

from coves.aggregators.api_keys import ApiKeys
from coves.auth.authenticator import CovesAuthenticator
from coves.auth.base import AuthFailure, AuthInput
from coves.context import AppContext
from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from coves.xrpc.app import create_app
from tests.ingest.helpers import apply
from tests.posting.client import Client
from tests.support.events import (
    AGGREGATOR,
    AUTHORIZATION,
    PROFILE,
    Stream,
    aggregator_record,
    authorization_record,
    community_record,
    did,
)

INSTANCE = "did:web:localhost"
BOT = did("newsbot")
QUIET = did("quietbot")
MOD = did("moderator")
KEY_RE = re.compile(r"^ckapi_[0-9a-f]{64}$")


@pytest.fixture
def client(posting_ctx: AppContext, lexicons: LexiconRegistry) -> Client:
    return Client(create_app(posting_ctx), lexicons)


async def register(db: Database, aggregator: str = BOT) -> None:
    await db.execute(
        "INSERT INTO aggregator_registrations (did, domain, registered_at) VALUES (%s, %s, now())",
        (aggregator, "bot.example.test"),
    )


async def test_api_key_lifecycle(client: Client, db: Database) -> None:
    with trio.fail_after(20):
        status, body = await client.post("social.coves.aggregator.createApiKey", viewer=BOT)
        assert (status, body["error"]) == (403, "AggregatorNotRegistered")
        await register(db)
        status, created = await client.post("social.coves.aggregator.createApiKey", viewer=BOT)
        assert status == 200, created
        key = created["key"]
        assert KEY_RE.match(key) and created["keyPrefix"] == key[:14]
        # Only a hash is stored: the key appears in no column.
        row = await db.fetchrow("SELECT * FROM aggregator_api_keys")
        assert row is not None and bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest()
        assert key not in str(row)
        # Shown once: getApiKey tells which key, never the key.
        status, info = await client.get("social.coves.aggregator.getApiKey", viewer=BOT)
        assert status == 200 and "key" not in info and info["keyPrefix"] == key[:14]
        assert "lastUsedAt" not in info
        # The key authenticates reads as the aggregator...
        status, feed = await client.get("social.coves.feed.getTimeline", {"limit": 5}, token=key)
        assert status == 200 and feed["feed"] == []
        status, info = await client.get("social.coves.aggregator.getApiKey", viewer=BOT)
        assert "lastUsedAt" in info
        # ...but manages nothing: key management and other writes need a sign-in.
        for nsid in ("social.coves.aggregator.revokeApiKey", "social.coves.aggregator.register"):
            status, body = await client.post(nsid, {}, token=key)
            assert (status, body["error"]) == (401, "AuthenticationRequired"), nsid
        status, body = await client.get("social.coves.aggregator.getApiKey", token=key)
        assert (status, body["error"]) == (403, "Forbidden")
        # A new key replaces the old one at once.
        status, second = await client.post("social.coves.aggregator.createApiKey", viewer=BOT)
        assert status == 200 and second["key"] != key
        status, body = await client.get("social.coves.feed.getTimeline", token=key)
        assert (status, body["error"]) == (401, "AuthenticationRequired")
        status, _ = await client.get("social.coves.feed.getTimeline", token=second["key"])
        assert status == 200
        # Revoked: refused, and nothing left to show.
        status, body = await client.post("social.coves.aggregator.revokeApiKey", viewer=BOT)
        assert (status, body) == (200, {"revoked": True})
        status, body = await client.get("social.coves.feed.getTimeline", token=second["key"])
        assert status == 401
        status, body = await client.get("social.coves.aggregator.getApiKey", viewer=BOT)
        assert (status, body["error"]) == (404, "ApiKeyNotFound")
        status, body = await client.post("social.coves.aggregator.revokeApiKey", viewer=BOT)
        assert (status, body["error"]) == (404, "ApiKeyNotFound")


async def test_the_runbook_statement_cuts_a_key_off_at_once(client: Client, db: Database) -> None:
    """docs/operations.md gives operators one SQL statement to revoke a key by hand."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    found = re.search(r"`(UPDATE aggregator_api_keys SET revoked_at[^`]*)`", doc)
    assert found is not None
    statement = " ".join(found.group(1).split()).replace("'<did>'", "%s").rstrip(";")
    with trio.fail_after(20):
        await register(db)
        status, created = await client.post("social.coves.aggregator.createApiKey", viewer=BOT)
        assert status == 200, created
        status, _ = await client.get("social.coves.feed.getTimeline", token=created["key"])
        assert status == 200
        await db.execute(statement, (BOT,))
        status, body = await client.get("social.coves.feed.getTimeline", token=created["key"])
        assert (status, body["error"]) == (401, "AuthenticationRequired")


async def test_malformed_and_unknown_keys_are_401(client: Client) -> None:
    with trio.fail_after(10):
        for token in ("ckapi_short", "ckapi_" + "g" * 64, "ckapi_" + "0" * 64):
            status, body = await client.get("social.coves.feed.getTimeline", token=token)
            assert (status, body["error"]) == (401, "AuthenticationRequired"), token


async def test_each_key_has_one_budget_across_worker_processes(
    posting_ctx: AppContext, lexicons: LexiconRegistry, db: Database
) -> None:
    """Two API workers, each with its own ApiKeys and its own RateLimiter summing
    through PostgreSQL (as ``coves serve`` runs them): a key's RATE_LIMIT_API_KEY is
    one budget for the deployment, not one per worker. Keyed by the key: another key,
    or the same aggregator signed in, is not charged."""
    import dataclasses

    from coves.xrpc.ratelimit import RateLimiter, SharedStore, default_limit_classes
    from tests.foundation.test_ratelimit_shared import WallClock, push_to
    from tests.posting.conftest import KeysOrFake

    settings = posting_ctx.settings.replace(rate_limit_api_key=4)
    wall = WallClock(1_800_000_010.0)  # one window for the whole test
    stores = [SharedStore(clock=wall), SharedStore(clock=wall)]
    workers = []
    for store in stores:
        keys = ApiKeys(db)
        ctx = dataclasses.replace(
            posting_ctx, settings=settings, api_keys=keys, authenticator=KeysOrFake(keys)
        )
        limiter = RateLimiter(default_limit_classes(settings), store)
        workers.append(Client(create_app(ctx, limiter=limiter), lexicons))
    await register(db)
    await register(db, QUIET)
    assert posting_ctx.api_keys is not None
    key = (await posting_ctx.api_keys.create(BOT))["key"]
    other = (await posting_ctx.api_keys.create(QUIET))["key"]
    with trio.fail_after(20):
        for worker in workers:
            for _ in range(2):
                status, body = await worker.get("social.coves.feed.getDiscover", token=key)
                assert status == 200, body
        one, two = workers

        async def discover(worker: Client, token: str | None = key, **kw: str) -> tuple[int, dict]:  # type: ignore[type-arg]
            return await worker.get("social.coves.feed.getDiscover", token=token, **kw)

        await stores[0].sync(push_to(db))  # learns its own 2
        await stores[1].sync(push_to(db))  # learns all 4: the budget is spent
        status, body = await discover(two)
        assert (status, body.get("error")) == (429, "RateLimitExceeded"), body
        assert "4 per 60s" in body["message"]
        # The first learns the others' hits at its next sync (at most one interval late).
        assert (await discover(one))[0] == 200
        await stores[0].sync(push_to(db))
        for worker in workers:
            status, body = await discover(worker)
            assert (status, body.get("error")) == (429, "RateLimitExceeded"), body
            assert (await discover(worker, other))[0] == 200
            assert (await discover(worker, None, viewer=BOT))[0] == 200
    key_id = await db.fetchval(
        "SELECT id FROM aggregator_api_keys WHERE aggregator_did = %s", (BOT,)
    )
    counted = await db.fetch("SELECT key, hits FROM rate_limit_counts WHERE key LIKE 'api_key:%'")
    # Keyed by the key's id (not its DID, not an address); 5 synced so far.
    assert [(row["key"], row["hits"]) for row in counted] == [(f"api_key:{key_id}", 5)]


async def test_production_authenticator_routes_ckapi_tokens_to_api_keys(db: Database) -> None:
    keys = ApiKeys(db)
    await register(db)
    key = (await keys.create(BOT))["key"]

    class NoServiceAuth:
        async def verify(self, jwt: object, nsid: str) -> object:
            raise AssertionError("an API key must never be parsed as a JWT")

    auth = CovesAuthenticator(NoServiceAuth(), api_keys=keys)  # type: ignore[arg-type]
    post = AuthInput(
        "POST", "http://x", "social.coves.community.post.create", {"authorization": f"Bearer {key}"}
    )
    with trio.fail_after(10):
        viewer = await auth.authenticate(post)
        assert viewer is not None and (viewer.did, viewer.method) == (BOT, "api_key")
        with pytest.raises(AuthFailure):  # only as a Bearer token
            await auth.authenticate(
                AuthInput("GET", "http://x", "q", {"authorization": f"DPoP {key}"})
            )
        without = CovesAuthenticator(NoServiceAuth())  # type: ignore[arg-type]
        with pytest.raises(AuthFailure):
            await without.authenticate(post)


@pytest.fixture
async def indexed(db: Database) -> dict[str, str]:
    """A community with three aggregators, indexed from real records."""
    indexer = Indexer(
        db, instance_did=INSTANCE, metrics=Metrics(), validator=LexiconRegistry.load()
    )
    stream = Stream()
    community = did("technews")
    events = [
        stream.commit(community, PROFILE, "self", community_record("technews", INSTANCE, MOD)),
        stream.commit(
            BOT,
            AGGREGATOR,
            "self",
            aggregator_record(
                "News Bot",
                did=BOT,
                description="Headlines, hourly.",
                sourceUrl="https://bot.example.test/src",
                maintainer=MOD,
            ),
        ),
        stream.commit(QUIET, AGGREGATOR, "self", aggregator_record("Quiet Bot", did=QUIET)),
        stream.commit(
            community,
            AUTHORIZATION,
            BOT,
            authorization_record(community, BOT, MOD, config={"n": 3}),
        ),
        stream.commit(
            community, AUTHORIZATION, QUIET, authorization_record(community, QUIET, MOD, False)
        ),
    ]
    await apply(indexer, *events)
    await db.execute(
        "UPDATE users SET handle = 'technews.community.localhost' WHERE did = %s", (community,)
    )
    return {"community": community}


async def test_get_services(client: Client, indexed: dict[str, str]) -> None:
    with trio.fail_after(10):
        status, body = await client.get(
            "social.coves.aggregator.getServices", {"dids": f"{QUIET}, {BOT},did:plc:nobody"}
        )
        assert status == 200, body
        assert [v["did"] for v in body["views"]] == [QUIET, BOT]  # request order, unknown left out
        bot = body["views"][1]
        assert bot["displayName"] == "News Bot" and bot["maintainer"] == MOD
        assert bot["recordUri"] == f"at://{BOT}/social.coves.aggregator.service/self"
        assert "stats" not in bot
        status, body = await client.get(
            "social.coves.aggregator.getServices", {"dids": [BOT], "detailed": True}
        )
        assert body["views"][0]["stats"] == {"communitiesUsing": 1, "postsCreated": 0}
        status, body = await client.get("social.coves.aggregator.getServices", {"dids": "nope"})
        assert (status, body["error"]) == (400, "InvalidRequest")
        status, body = await client.get(
            "social.coves.aggregator.getServices", {"dids": ",".join([BOT] * 101)}
        )
        assert status == 400


async def test_get_authorizations_pages_and_filters(
    client: Client, indexed: dict[str, str]
) -> None:
    community = indexed["community"]
    with trio.fail_after(10):
        status, body = await client.get(
            "social.coves.aggregator.getAuthorizations", {"aggregatorDid": BOT}
        )
        assert status == 200, body
        [auth] = body["authorizations"]
        assert auth["communityDid"] == community and auth["enabled"] is True
        assert auth["communityHandle"] == "technews.community.localhost"
        assert auth["config"] == {"n": 3} and auth["aggregator"]["did"] == BOT
        status, body = await client.get(
            "social.coves.aggregator.getAuthorizations",
            {"aggregatorDid": QUIET, "enabledOnly": True},
        )
        assert body["authorizations"] == []
        status, body = await client.get(
            "social.coves.aggregator.getAuthorizations", {"aggregatorDid": did("ghost")}
        )
        assert (status, body["error"]) == (404, "AggregatorNotFound")


async def test_list_for_community(client: Client, indexed: dict[str, str]) -> None:
    community = indexed["community"]
    with trio.fail_after(10):
        for ident in (community, "technews.community.localhost", "!technews@localhost"):
            status, body = await client.get(
                "social.coves.aggregator.listForCommunity", {"community": ident}
            )
            assert status == 200, body
            assert {a["aggregatorDid"] for a in body["aggregators"]} == {BOT, QUIET}
        status, page1 = await client.get(
            "social.coves.aggregator.listForCommunity", {"community": community, "limit": 1}
        )
        assert len(page1["aggregators"]) == 1 and "cursor" in page1
        status, page2 = await client.get(
            "social.coves.aggregator.listForCommunity",
            {"community": community, "limit": 1, "cursor": page1["cursor"]},
        )
        assert status == 200 and len(page2["aggregators"]) == 1 and "cursor" not in page2
        seen = {page1["aggregators"][0]["aggregatorDid"], page2["aggregators"][0]["aggregatorDid"]}
        assert seen == {BOT, QUIET}
        status, body = await client.get(
            "social.coves.aggregator.listForCommunity",
            {"community": community, "enabledOnly": True},
        )
        assert [a["aggregatorDid"] for a in body["aggregators"]] == [BOT]
        status, body = await client.get(
            "social.coves.aggregator.listForCommunity",
            {"community": community, "cursor": "forged"},
        )
        assert (status, body["error"]) == (400, "InvalidCursor")
        status, body = await client.get(
            "social.coves.aggregator.listForCommunity", {"community": did("nowhere")}
        )
        assert (status, body["error"]) == (404, "CommunityNotFound")
