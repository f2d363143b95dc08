"""Ranked first pages: the previous snapshot is served while one recomputes."""

from __future__ import annotations

import pytest
import trio
import trio.testing


async def test_first_pages_use_the_previous_snapshot_while_one_recomputes(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coves.read import snapshots as snapshot_module
    from coves.read.snapshots import SnapshotStore, StaleWhileRefreshing

    async def no_insert(*args: object) -> None:
        return None

    monkeypatch.setattr(snapshot_module.snapshot_sql, "insert", no_insert)
    store = SnapshotStore(None, reuse_seconds=10.0)  # type: ignore[arg-type]
    pages = StaleWhileRefreshing(store)
    computed: list[int] = []

    async def compute() -> list[str]:
        computed.append(1)
        await trio.sleep(2)
        return [f"u{len(computed)}"]

    first = await pages.current("k", compute)
    assert first.items == ("u1",)
    await trio.sleep(11)  # due: one request recomputes, the others get the old one at once
    seen: list[tuple[tuple[str, ...], float]] = []

    async def read() -> None:
        snapshot = await pages.current("k", compute)
        seen.append((snapshot.items, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.sleep(0.1)
        started = trio.current_time()
        for _ in range(3):
            nursery.start_soon(read)
    old = [t for items, t in seen if items == ("u1",)]
    assert len(old) == 3 and all(t == started for t in old)
    assert [items for items, _ in seen if items != ("u1",)] == [("u2",)]
    assert len(computed) == 2
    assert (await pages.current("k", compute)).items == ("u2",)
