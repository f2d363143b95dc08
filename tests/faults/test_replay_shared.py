"""Service-auth replay is refused across restarts and across processes sharing a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from coves.auth.base import AuthFailure
from coves.auth.replay import ReplayCache, SharedReplayGuard
from coves.auth.service_auth import ServiceAuthVerifier
from coves.db import Database
from coves.db.queries import replay as replay_sql
from tests.auth.helpers import ALICE, NSID, SERVICE_AUD, SERVICE_DID, World, request
from tests.support import tokens


def process(world: World, db: Database) -> ServiceAuthVerifier:
    """One Coves process: its own memory, the shared database."""
    return ServiceAuthVerifier(
        world.resolver,
        service_did=SERVICE_DID,
        service_id="coves_appview",
        max_lifetime=300,
        replay=SharedReplayGuard(db),
    )


async def test_a_used_token_is_refused_by_every_process_and_after_a_restart(db: Database) -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    first, second = process(world, db), process(world, db)
    with trio.fail_after(10):
        world.service_auth = first
        assert (await world.authenticator().authenticate(request(f"Bearer {token}"))) is not None
        for verifier in (first, second, process(world, db)):  # same, other, restarted
            world.service_auth = verifier
            with pytest.raises(AuthFailure) as info:
                await world.authenticator().authenticate(request(f"Bearer {token}"))
            assert info.value.reason == "replayed"
        fresh = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
        assert (await world.authenticator().authenticate(request(f"Bearer {fresh}"))) is not None


async def test_two_processes_racing_on_one_token_accept_it_once(db: Database) -> None:
    world = World()
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    verdicts: list[str] = []

    async def attempt(verifier: ServiceAuthVerifier) -> None:
        from coves.auth.jwt import parse_jwt

        try:
            await verifier.verify(parse_jwt(token), NSID)
            verdicts.append("accepted")
        except AuthFailure as failure:
            verdicts.append(failure.reason)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(attempt, process(world, db))
    assert sorted(verdicts) == ["accepted", "replayed", "replayed", "replayed"]


async def test_expired_records_are_taken_over_and_pruned(db: Database) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with trio.fail_after(10):
        assert await replay_sql.record_first_use(db, b"k", now + timedelta(seconds=60), now)
        assert not await replay_sql.record_first_use(db, b"k", now + timedelta(seconds=90), now)
        later = now + timedelta(seconds=61)
        assert await replay_sql.record_first_use(db, b"k", later + timedelta(seconds=60), later)
        await replay_sql.record_first_use(db, b"old", now + timedelta(seconds=1), now)
        assert await replay_sql.prune_expired(db, later) == 1
        assert await db.fetchval("SELECT count(*) FROM auth_replay") == 1


async def test_concurrent_records_share_statements_and_each_verdict_holds(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens recorded while another statement is in flight go together in the next."""
    sent: list[int] = []
    real = replay_sql.record_first_uses

    async def counting(db_: Database, expiries: dict[bytes, datetime], now: datetime) -> set[bytes]:
        sent.append(len(expiries))
        return await real(db_, expiries, now)

    monkeypatch.setattr(replay_sql, "record_first_uses", counting)
    guard, other = SharedReplayGuard(db), SharedReplayGuard(db)
    assert not await other.seen_before("used-elsewhere", 300)  # another process took it
    verdicts: dict[str, bool] = {}

    async def record(key: str) -> None:
        verdicts[key] = await guard.seen_before(key, 300)

    keys = [f"jti-{i}" for i in range(20)] + ["used-elsewhere"]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for key in keys:
                nursery.start_soon(record, key)
    assert verdicts == {key: key == "used-elsewhere" for key in keys}
    assert sum(sent) == 1 + len(keys) and len(sent) < 1 + len(keys), sent
    assert await db.fetchval("SELECT count(*) FROM auth_replay") == len(keys)


async def test_records_waiting_on_a_cancelled_sender_are_made_on_their_own(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = SharedReplayGuard(db)
    real = replay_sql.record_first_uses
    stuck = trio.Event()

    async def first_stuck(
        db_: Database, expiries: dict[bytes, datetime], now: datetime
    ) -> set[bytes]:
        if not stuck.is_set():
            stuck.set()
            await trio.sleep_forever()  # the statement in flight never lands...
        return await real(db_, expiries, now)

    monkeypatch.setattr(replay_sql, "record_first_uses", first_stuck)
    verdicts: dict[str, bool] = {}
    scopes = {"first": trio.CancelScope(), "second": trio.CancelScope()}

    async def record(key: str) -> None:
        with scopes.get(key, trio.CancelScope()):
            verdicts[key] = await guard.seen_before(key, 300)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record, "first")
            await stuck.wait()
            nursery.start_soon(record, "second")  # the next batch's sender, waiting
            await trio.sleep(0.05)
            nursery.start_soon(record, "third")  # in the second's batch
            await trio.sleep(0.05)
            scopes["second"].cancel()  # its client went away: the third records alone
            await trio.sleep(0.5)
            assert verdicts == {"third": False}
            scopes["first"].cancel()
    assert await guard.seen_before("third", 300)


async def test_one_token_twice_in_a_batch_is_accepted_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory in front normally refuses the second use at once; should it have
    forgotten the token (capacity), the shared batch still accepts it once."""
    real = replay_sql.record_first_uses
    sending = trio.Event()

    async def slow(db_: Database, expiries: dict[bytes, datetime], now: datetime) -> set[bytes]:
        if not sending.is_set():
            sending.set()
            await trio.sleep(0.2)  # the first statement is in flight a while
        return await real(db_, expiries, now)

    monkeypatch.setattr(replay_sql, "record_first_uses", slow)
    guard = SharedReplayGuard(db, ReplayCache(capacity=0))
    verdicts: list[bool] = []

    async def record(key: str) -> None:
        seen = await guard.seen_before(key, 300)
        if key == "dup":
            verdicts.append(seen)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record, "in-flight")
            await sending.wait()
            nursery.start_soon(record, "dup")  # both join the next batch
            nursery.start_soon(record, "dup")
    assert sorted(verdicts) == [False, True]
    assert await guard.seen_before("dup", 300)
