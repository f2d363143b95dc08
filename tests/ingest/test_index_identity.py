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


async def due(db: Database, did: str) -> bool:
    return bool(
        await value(
            db,
            "SELECT handle_retry_at IS NOT NULL AND handle_retry_at <= now() FROM users"
            " WHERE did = %s",
            did,
        )
    )


async def test_identity_schedules_verification_and_calls_hooks_but_sets_no_handle(
    db: Database, metrics: Metrics, stream: Stream
) -> None:
    seen: list[list[str]] = []
    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=metrics, on_identity_change=[seen.append]
    )
    await _known(indexer, stream, ALICE)
    await db.execute(
        "UPDATE users SET handle = 'alice.example.com', handle_retry_at = NULL WHERE did = %s",
        (ALICE,),
    )
    result = await apply(
        indexer,
        stream.identity(ALICE, "Someone-Else.COM"),
        stream.identity(STRANGER, "s.example.com"),
    )
    # The last verified handle stays until the new claim is verified both ways.
    assert await value(db, "SELECT handle FROM users WHERE did = %s", ALICE) == "alice.example.com"
    assert await due(db, ALICE)
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
    await db.execute("UPDATE users SET handle_retry_at = NULL WHERE did = %s", (ALICE,))
    await apply(indexer, old)
    assert not await due(db, ALICE)
    assert (
        await value(db, "SELECT identity_time_us FROM users WHERE did = %s", ALICE)
        == (new["time_us"])
    )


async def test_an_identity_event_cannot_take_another_accounts_handle(
    db: Database, metrics: Metrics, stream: Stream
) -> None:
    seen: list[list[str]] = []
    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=metrics, on_identity_change=[seen.append]
    )
    await _known(indexer, stream, ALICE, BOB)
    await db.execute(
        "UPDATE users SET handle = 'alice.example.com', handle_retry_at = NULL WHERE did = %s",
        (ALICE,),
    )
    await apply(indexer, stream.identity(BOB, "alice.example.com"))
    assert await value(db, "SELECT handle FROM users WHERE did = %s", ALICE) == "alice.example.com"
    assert await value(db, "SELECT handle FROM users WHERE did = %s", BOB) is None
    assert seen == [[BOB]]


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
