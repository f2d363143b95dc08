"""social.coves.actor.getProfile through the dispatcher, output checked against the lexicon."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import trio
from psycopg.types.json import Jsonb

from coves.config import Settings
from coves.context import AppContext
from coves.db import Database
from coves.identity import IdentityResolver
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from coves.xrpc.app import create_app
from tests.support.fake_did import PLC_URL, FakeNetwork

NSID = "social.coves.actor.getProfile"
ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
NOHANDLE = "did:plc:nnnnnnnnnnnnnnnnnnnnnnnn"
GONE = "did:plc:gggggggggggggggggggggggg"
LATE = "did:plc:llllllllllllllllllllllll"
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture(scope="module")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


@pytest.fixture
async def client(settings: Settings, db: Database, lexicons: LexiconRegistry) -> Any:
    net = FakeNetwork()
    net.add_plc(LATE, None, "late.example.com")
    ctx = AppContext(
        settings=settings.replace(rate_limit_general=100_000),
        db=db,
        metrics=Metrics(),
        lexicons=lexicons,
        identity=IdentityResolver(
            fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup
        ),
    )
    rows = [
        (ALICE, "alice.example.com", "Alice", "hi there", True, None),
        (NOHANDLE, None, None, None, True, None),
        (GONE, "gone.example.com", None, None, False, "deactivated"),
        (LATE, None, None, None, True, None),
    ]
    for did, handle, name, description, active, status in rows:
        avatar = {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/png", "size": 9}
        await db.execute(
            "INSERT INTO users (did, handle, display_name, description, avatar, pds_url, "
            "active, account_status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                did,
                handle,
                name,
                description,
                Jsonb(avatar) if name else None,
                "https://pds.example.com",
                active,
                status,
            ),
        )
    app = create_app(ctx)

    async def get(params: dict[str, str]) -> tuple[int, Any]:
        with trio.fail_after(10):
            response = await app.test_client().get(f"/xrpc/{NSID}?{urlencode(params)}")
            body = orjson.loads(await response.get_data())
        if response.status_code == 200:
            lexicons.validate_output(NSID, body)
        return response.status_code, body

    return get


async def test_profile_by_did_and_by_handle(client: Any) -> None:
    status, by_did = await client({"actor": ALICE})
    assert status == 200
    assert by_did["did"] == ALICE and by_did["handle"] == "alice.example.com"
    assert by_did["displayName"] == "Alice" and by_did["description"] == "hi there"
    assert CID in by_did["avatar"] and by_did["avatar"].startswith("https://pds.example.com/")
    assert by_did["profile"] == {"handle": "alice.example.com", "createdAt": by_did["createdAt"]}
    assert by_did["stats"] == {
        "postCount": 0,
        "commentCount": 0,
        "communityCount": 0,
        "membershipCount": 0,
        "reputation": 0,
    }
    for actor in ("alice.example.com", "Alice.Example.COM"):
        status, body = await client({"actor": actor})
        assert status == 200 and body == by_did


async def test_unknown_handle_shows_handle_invalid(client: Any) -> None:
    status, body = await client({"actor": NOHANDLE})
    assert status == 200
    assert body["handle"] == "handle.invalid" and body["profile"]["handle"] == "handle.invalid"
    assert "displayName" not in body and "avatar" not in body


async def test_handle_not_indexed_yet_is_resolved_bidirectionally(client: Any) -> None:
    status, body = await client({"actor": "late.example.com"})
    assert status == 200 and body["did"] == LATE


@pytest.mark.parametrize(
    "actor", [GONE, "gone.example.com", "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", "nobody.example.com"]
)
async def test_unknown_or_deactivated_is_404(client: Any, actor: str) -> None:
    status, body = await client({"actor": actor})
    assert status == 404 and body["error"] == "NotFound"


@pytest.mark.parametrize(
    "params", [{}, {"actor": ""}, {"actor": "not a handle"}, {"actor": "did:"}]
)
async def test_bad_identifiers_are_400(client: Any, params: dict[str, str]) -> None:
    status, body = await client(params)
    assert status == 400 and body["error"] == "InvalidRequest"


async def test_stats_count_live_posts_and_subscriptions(client: Any, db: Database) -> None:
    from tests.support.factories import Factory

    factory = Factory(db)
    community = await factory.community("gaming")
    other = await factory.community("other")
    await factory.post(community, ALICE, ups=5, downs=1)
    await factory.post(other, ALICE, ups=2)
    await factory.post(community, ALICE, deleted=True, ups=100)
    await factory.subscribe(ALICE, community)
    status, body = await client({"actor": ALICE})
    assert status == 200
    assert body["stats"] == {
        "postCount": 2,
        "commentCount": 0,
        "communityCount": 1,
        "membershipCount": 2,  # communities posted in
        "reputation": 6,  # summed score of live posts (and comments)
    }
