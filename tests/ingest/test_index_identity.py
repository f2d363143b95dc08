"""Identity (handles) and account (active/status) events."""

from __future__ import annotations

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.metrics import Metrics
from tests.ingest.conftest import INSTANCE_DID
from tests.ingest.helpers import apply, one, value
from tests.support.events import ACTOR_PROFILE, Stream, did

ALICE = did("alice")
BOB = did("bob")
STRANGER = did("stranger")


async def _known(indexer: Indexer, stream: Stream, *dids: str) -> None:
    await apply(indexer, *(stream.commit(d, ACTOR_PROFILE, "self", {}) for d in dids))


async def test_identity_sets_lowercased_handle_and_calls_hooks(
    db: Database, metrics: Metrics, stream: Stream
) -> None:
    seen: list[list[str]] = []
    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=metrics, on_identity_change=[seen.append]
    )
    await _known(indexer, stream, ALICE)
    result = await apply(
        indexer,
        stream.identity(ALICE, "Alice.Example.COM"),
        stream.identity(STRANGER, "s.example.com"),
    )
    assert await value(db, "SELECT handle FROM users WHERE did = %s", ALICE) == "alice.example.com"
    # Identity events for accounts we never referenced are not indexed.
    assert await value(db, "SELECT count(*) FROM users WHERE did = %s", STRANGER) == 0
    assert seen == [[ALICE]]
    assert result.applied == 1 and result.reasons == {"stale": 1}


async def test_stale_identity_event_is_ignored(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await _known(indexer, stream, ALICE)
    old = stream.identity(ALICE, "old.example.com")
    new = stream.identity(ALICE, "new.example.com")
    await apply(indexer, new)
    await apply(indexer, old)
    assert await value(db, "SELECT handle FROM users WHERE did = %s", ALICE) == "new.example.com"


async def test_handle_moves_between_dids(db: Database, indexer: Indexer, stream: Stream) -> None:
    await _known(indexer, stream, ALICE, BOB)
    await apply(indexer, stream.identity(ALICE, "shared.example.com"))
    await apply(indexer, stream.identity(BOB, "shared.example.com"))
    assert await value(db, "SELECT handle FROM users WHERE did = %s", ALICE) is None
    assert await value(db, "SELECT handle FROM users WHERE did = %s", BOB) == "shared.example.com"
    # Swapping handles inside one batch works too.
    await apply(
        indexer, stream.identity(ALICE, "shared.example.com"), stream.identity(BOB, "b.example.com")
    )
    rows = await db.fetch("SELECT did, handle FROM users WHERE did IN (%s, %s)", (ALICE, BOB))
    assert {r["did"]: r["handle"] for r in rows} == {
        ALICE: "shared.example.com",
        BOB: "b.example.com",
    }


async def test_invalid_handle_marker_clears_handle(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await _known(indexer, stream, ALICE)
    await apply(indexer, stream.identity(ALICE, "alice.example.com"))
    await apply(indexer, stream.identity(ALICE, "handle.invalid"))
    assert await value(db, "SELECT handle FROM users WHERE did = %s", ALICE) is None


async def test_account_deactivate_and_reactivate(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await _known(indexer, stream, ALICE)
    await apply(indexer, stream.account(ALICE, False, "takendown"))
    row = await one(db, "SELECT active, account_status FROM users WHERE did = %s", ALICE)
    assert row == {"active": False, "account_status": "takendown"}
    stale = stream.account(ALICE, False, "suspended")
    reactivate = stream.account(ALICE, True)
    await apply(indexer, reactivate)
    await apply(indexer, stale)  # older: ignored
    row = await one(db, "SELECT active, account_status FROM users WHERE did = %s", ALICE)
    assert row == {"active": True, "account_status": None}


async def test_account_inactive_without_status_is_deactivated(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await _known(indexer, stream, ALICE)
    await apply(indexer, stream.account(ALICE, False))
    row = await one(db, "SELECT active, account_status FROM users WHERE did = %s", ALICE)
    assert row == {"active": False, "account_status": "deactivated"}
