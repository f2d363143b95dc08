"""The Jetstream consumer under MockClock, over in-memory websockets."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from coves.ingest.stream import COLLECTIONS
from coves.metrics import Metrics
from nurseries.jetstream import ConnectionState, ConsumerConfig, JetstreamConsumer
from tests.support.consumer import POST, VOTE, MaxRandom, publish_votes, running_consumer, wait_for
from tests.support.fake_jetstream import FakeJetstream
from tests.support.memory_sink import MemorySink, event_key

US = 1_000_000


async def test_fresh_database_tails_live_with_every_collection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    fake.commit("did:plc:old", VOTE, "before-connect")
    with trio.fail_after(60):
        async with running_consumer(fake, sink) as consumer:
            await fake.wait_for_connections(1)
            published = publish_votes(fake, 3)
            await wait_for(lambda: len(sink.applied) == 3)
            assert consumer.state is ConnectionState.CONNECTED
    request = fake.requests[0]
    assert request.cursor is None
    assert request.wanted_collections == COLLECTIONS
    assert "maxMessageSizeBytes" not in request.params
    assert sink.applied_keys() == [event_key(e) for e in published]


async def test_identity_and_account_events_are_delivered_but_foreign_commits_are_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(60):
        async with running_consumer(fake, sink):
            await fake.wait_for_connections(1)
            fake.commit("did:plc:a", "app.bsky.feed.post", "x")
            identity = fake.identity("did:plc:a", "alice.test")
            account = fake.account("did:plc:a", active=False, status="takendown")
            post = fake.commit("did:plc:community", POST, "p1")
            await wait_for(lambda: len(sink.applied) == 3)
    assert [e["kind"] for e in sink.applied] == ["identity", "account", "commit"]
    assert sink.applied_keys() == [event_key(e) for e in (identity, account, post)]


async def test_batches_by_size_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(60):
        async with running_consumer(fake, sink, batch_size=10, batch_ms=1000) as consumer:
            await fake.wait_for_connections(1)
            published = publish_votes(fake, 25)
            await wait_for(lambda: len(sink.applied) == 25)
    assert sink.batch_sizes == [10, 10, 5]
    assert sink.applied_keys() == [event_key(e) for e in published]
    assert consumer.batches == 3
    assert consumer.frames == 25


async def test_batches_by_time_when_the_stream_is_slow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(60):
        async with running_consumer(fake, sink, batch_size=100, batch_ms=200):
            await fake.wait_for_connections(1)
            start = trio.current_time()
            publish_votes(fake, 2, "a")
            await trio.sleep(0.05)
            publish_votes(fake, 1, "b")
            await wait_for(lambda: len(sink.applied) == 3)
            # a frame arriving after the deadline starts the next batch
            await trio.sleep(0.5)
            publish_votes(fake, 1, "c")
            await wait_for(lambda: len(sink.applied) == 4)
    assert sink.batch_sizes == [3, 1]
    assert sink.batch_times[0] - start == pytest.approx(0.2, abs=0.01)


async def test_reconnect_resumes_at_cursor_minus_rewind_without_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(120):
        async with running_consumer(fake, sink, rewind_seconds=5.0) as consumer:
            await fake.wait_for_connections(1)
            first = publish_votes(fake, 5, "a")
            await wait_for(lambda: len(sink.applied) == 5)
            committed = sink.cursor
            assert committed == first[-1]["time_us"]
            await fake.drop(abnormal=True)
            # events published while we are away must come back via the cursor
            second = publish_votes(fake, 5, "b")
            await fake.wait_for_connections(2)
            third = publish_votes(fake, 5, "c")
            await wait_for(lambda: len(sink.applied) == 15)
            assert consumer.reconnects == {"abnormal": 1}
    assert fake.requests[1].cursor == committed - 5 * US
    assert sink.applied_keys() == [event_key(e) for e in first + second + third]


async def test_clean_close_is_counted_and_resumed(autojump_clock: trio.testing.MockClock) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(120):
        async with running_consumer(fake, sink) as consumer:
            await fake.wait_for_connections(1)
            publish_votes(fake, 3, "a")
            await wait_for(lambda: len(sink.applied) == 3)
            assert await fake.drop(code=1001) == 1
            await fake.wait_for_connections(2)
            assert consumer.reconnects == {"closed": 1}
            await fake.drop(code=1011)
            await fake.wait_for_connections(3)
            assert consumer.reconnects == {"closed": 1, "closed_error": 1}


async def test_drop_before_first_commit_on_fresh_database_leaves_no_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    gate = trio.Event()
    sink.gate = gate  # the first batch cannot commit yet
    with trio.fail_after(120):
        async with running_consumer(fake, sink):
            await fake.wait_for_connections(1)
            await trio.sleep(1.0)
            first = publish_votes(fake, 3, "a")
            await wait_for(lambda: sink.in_apply == 1)
            await fake.drop(abnormal=True)
            sink.gate = None
            gate.set()
            missed = publish_votes(fake, 3, "b")
            await wait_for(lambda: len(sink.applied) == 6)
    # the second connection resumed from when the first started, not live
    assert fake.requests[1].cursor is not None
    assert fake.requests[1].cursor <= first[0]["time_us"]
    assert {event_key(e) for e in first + missed} == set(sink.applied_keys())
    assert len(sink.applied) == 6


async def test_gap_is_detected_and_counted_when_cursor_is_older_than_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeJetstream(window_seconds=36 * 3600)
    now_us = fake.now_us()
    stale = now_us - 40 * 3600 * US
    sink = MemorySink(cursor=stale)
    metrics = Metrics()
    kept = fake.commit("did:plc:a", VOTE, "kept", time_us=now_us - 10 * 3600 * US)
    with trio.fail_after(60):
        async with running_consumer(fake, sink, metrics=metrics) as consumer:
            await wait_for(lambda: len(sink.applied) == 1)
            assert consumer.gaps == 1
            assert consumer.health()["gaps"] == 1
    assert fake.requests[0].cursor == stale - 5 * US  # passed on; the server clamps
    assert sink.applied_keys() == [event_key(kept)]
    rendered = metrics.render().decode()
    assert "coves_jetstream_gaps_total 1.0" in rendered
    gap_line = next(
        line
        for line in rendered.splitlines()
        if line.startswith("coves_jetstream_gap_seconds_total")
    )
    assert float(gap_line.split()[-1]) == pytest.approx(4 * 3600, rel=0.01)


async def test_gap_is_reported_once_per_stale_cursor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeJetstream()
    sink = MemorySink(cursor=fake.now_us() - 37 * 3600 * US)
    with trio.fail_after(120):
        async with running_consumer(fake, sink) as consumer:
            await fake.wait_for_connections(1)
            await fake.drop(abnormal=True)  # nothing committed yet: same stale cursor
            await fake.wait_for_connections(2)
            assert consumer.gaps == 1


async def test_recent_cursor_is_not_a_gap(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeJetstream()
    sink = MemorySink(cursor=fake.now_us() - 35 * 3600 * US)
    with trio.fail_after(60):
        async with running_consumer(fake, sink) as consumer:
            await fake.wait_for_connections(1)
            assert consumer.gaps == 0


async def test_idle_watchdog_reconnects_a_silent_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(600):
        async with running_consumer(
            fake, sink, idle_timeout=90.0, ping_interval=20.0, pong_timeout=5.0
        ) as consumer:
            await fake.wait_for_connections(1)
            publish_votes(fake, 1, "a")
            await wait_for(lambda: len(sink.applied) == 1)
            fake.go_silent()  # the stale-socket case: pings still answered
            silent_from = trio.current_time()
            publish_votes(fake, 2, "b")  # held back by the silent connection
            await fake.wait_for_connections(2)
            assert trio.current_time() - silent_from == pytest.approx(90.0, abs=1.5)
            assert consumer.reconnects == {"idle_timeout": 1}
            await wait_for(lambda: len(sink.applied) == 3)


async def test_missing_pong_reconnects_before_the_idle_watchdog(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(600):
        async with running_consumer(
            fake, sink, idle_timeout=1000.0, ping_interval=30.0, pong_timeout=10.0
        ) as consumer:
            await fake.wait_for_connections(1)
            start = trio.current_time()
            fake.stop_answering_pings()
            await fake.wait_for_connections(2)
            # first ping at 30 s, its deadline at 40 s, then a backoff under 1 s
            assert 40.0 <= trio.current_time() - start <= 41.5
            assert consumer.reconnects == {"pong_timeout": 1}


async def test_answered_pings_keep_a_quiet_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(600):
        async with running_consumer(
            fake, sink, idle_timeout=1000.0, ping_interval=30.0, pong_timeout=10.0
        ) as consumer:
            await fake.wait_for_connections(1)
            await trio.sleep(300.0)
            assert fake.accepted == 1
            assert consumer.reconnects == {}
            assert fake.live[0].pings >= 9


async def test_backoff_is_full_jitter_within_growing_capped_ceilings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(refuse_status=503), MemorySink()
    with trio.fail_after(3600):
        async with running_consumer(
            fake, sink, rng=random.Random(1234), breaker_threshold=1000
        ) as consumer:
            await wait_for(lambda: len(consumer.delays) >= 40, poll=0.5)
            delays = list(consumer.delays[:40])
    ceilings = [min(60.0, 2.0**i) for i in range(40)]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == 40  # jittered, not fixed
    assert max(delays[10:]) > 30.0  # the cap, not the base, bounds later delays
    assert consumer.reconnects["rejected"] >= 40


async def test_backoff_ceilings_double_to_the_cap(autojump_clock: trio.testing.MockClock) -> None:
    fake, sink = FakeJetstream(refuse_status=503), MemorySink()
    with trio.fail_after(3600):
        async with running_consumer(
            fake, sink, rng=MaxRandom(), breaker_threshold=1000
        ) as consumer:
            await wait_for(lambda: len(consumer.delays) >= 9, poll=0.5)
    assert consumer.delays[:9] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    gaps = [b - a for a, b in zip(fake.request_times, fake.request_times[1:], strict=False)]
    assert gaps[:7] == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0], abs=0.01)


async def test_backoff_resets_after_a_stable_minute(autojump_clock: trio.testing.MockClock) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(3600):
        async with running_consumer(
            fake, sink, rng=MaxRandom(), ping_interval=20.0, idle_timeout=1000.0
        ) as consumer:
            await fake.wait_for_connections(1)
            # three quick drops: the delay ceiling grows 1, 2, 4
            for n in range(2, 5):
                await fake.drop(abnormal=True)
                await fake.wait_for_connections(n)
            assert consumer.delays == [1.0, 2.0, 4.0]
            # now a connection that stays up past a minute
            await trio.sleep(61.0)
            await fake.drop(abnormal=True)
            await fake.wait_for_connections(5)
            assert consumer.delays[-1] == 1.0
            # a short one after that grows again from the base
            await fake.drop(abnormal=True)
            await fake.wait_for_connections(6)
            assert consumer.delays[-1] == 2.0


async def test_breaker_opens_then_probes_then_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(refuse_status=503), MemorySink()
    with trio.fail_after(3600):
        async with running_consumer(
            fake, sink, rng=MaxRandom(), breaker_threshold=3, breaker_cooldown=300.0
        ) as consumer:
            await wait_for(lambda: len(fake.requests) == 3)
            await trio.sleep(1.0)
            assert consumer.breaker.state == "open"
            assert consumer.state is ConnectionState.BREAKER_OPEN
            assert consumer.health()["breaker"] == "open"
            opened = fake.request_times[2]
            # the half-open probe comes after the cooldown, not the 4 s backoff
            await wait_for(lambda: len(fake.requests) == 4, poll=0.5)
            assert fake.request_times[3] - opened == pytest.approx(300.0, abs=0.01)
            # the probe failed: open again for a full cooldown
            await trio.sleep(1.0)
            assert consumer.breaker.state == "open"
            fake.refuse(None)
            await fake.wait_for_connections(1)
            assert fake.request_times[4] - fake.request_times[3] == pytest.approx(300.0, abs=0.01)
            publish_votes(fake, 1)
            await wait_for(lambda: len(sink.applied) == 1)
            assert consumer.breaker.state == "closed"
            assert consumer.breaker.times_opened == 2
            assert consumer.health()["breaker"] == "closed"


async def test_connection_that_never_delivers_counts_as_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(3600):
        async with running_consumer(
            fake, sink, breaker_threshold=2, idle_timeout=5.0, ping_interval=1000.0
        ) as consumer:
            await fake.wait_for_connections(2)
            await wait_for(lambda: consumer.breaker.state == "open")
            assert consumer.reconnects["idle_timeout"] == 2


async def test_database_outage_pauses_and_resumes_without_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(3600):
        async with running_consumer(fake, sink, rng=MaxRandom(), batch_size=3) as consumer:
            await fake.wait_for_connections(1)
            before = publish_votes(fake, 3, "a")
            await wait_for(lambda: len(sink.applied) == 3)
            committed = sink.cursor
            sink.down = True
            during = publish_votes(fake, 4, "b")
            await wait_for(lambda: consumer.reconnects.get("database", 0) >= 3)
            assert fake.live == []  # stopped reading: no connection while the db is down
            assert sink.cursor == committed
            more = publish_votes(fake, 2, "c")
            sink.down = False
            await wait_for(lambda: len(sink.applied) == 9)
            assert consumer.breaker.state == "closed"  # a db outage is not jetstream's fault
    assert fake.requests[-1].cursor == committed - 5 * US
    assert sink.applied_keys() == [event_key(e) for e in before + during + more]
    assert consumer.delays[:3] == [1.0, 2.0, 4.0]


async def test_slow_sink_applies_backpressure_and_bounds_memory(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    gate = trio.Event()
    sink.gate = gate
    with trio.fail_after(600):
        async with running_consumer(
            fake, sink, batch_size=10, queue_frames=20, idle_timeout=5.0, ping_interval=2.0
        ) as consumer:
            await fake.wait_for_connections(1)
            published = publish_votes(fake, 500)
            await trio.sleep(60.0)  # far past the idle timeout and several pings
            # one batch committing, one staged behind it, the channel full, and one
            # frame in the reader's hand
            assert consumer.frames == 10 + 10 + 20 + 1
            assert consumer.reconnects == {}  # blocked on us, not silent
            sink.gate = None
            gate.set()
            await wait_for(lambda: len(sink.applied) == 500)
    assert sink.applied_keys() == [event_key(e) for e in published]
    assert max(sink.batch_sizes) == 10


async def test_cancelled_mid_batch_then_restarted_loses_and_duplicates_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(600):
        async with fake.running():
            first = JetstreamConsumer(
                sink,
                ConsumerConfig(url="ws://jetstream.test/subscribe", batch_size=4),
                opener=fake.opener(),
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(first.run)
                await fake.wait_for_connections(1)
                published = publish_votes(fake, 4, "a")
                await wait_for(lambda: len(sink.applied) == 4)
                sink.gate = trio.Event()  # the next batch hangs mid-transaction
                published += publish_votes(fake, 6, "b")
                await wait_for(lambda: sink.in_apply == 1)
                nursery.cancel_scope.cancel()
            assert len(sink.applied) == 4  # nothing half-applied
            assert sink.cursor == published[3]["time_us"]
            sink.gate = None
            second = JetstreamConsumer(
                sink,
                ConsumerConfig(url="ws://jetstream.test/subscribe", batch_size=4),
                opener=fake.opener(),
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(second.run)
                await wait_for(lambda: len(sink.applied) == 10)
                nursery.cancel_scope.cancel()
    assert sink.applied_keys() == [event_key(e) for e in published]
    assert len(set(sink.applied_keys())) == 10


async def test_sink_bug_crashes_the_child(autojump_clock: trio.testing.MockClock) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    consumer = JetstreamConsumer(
        sink, ConsumerConfig(url="ws://jetstream.test/subscribe"), opener=fake.opener()
    )
    with trio.fail_after(60):
        async with fake.running():
            sink.fail_with = KeyError("bug in the indexer")
            async with trio.open_nursery() as nursery:

                async def publish_later() -> None:
                    await fake.wait_for_connections(1)
                    publish_votes(fake, 1)

                nursery.start_soon(publish_later)
                with pytest.raises(KeyError, match="bug in the indexer"):
                    await consumer.run()
    assert consumer.state is ConnectionState.STOPPED


async def test_request_stop_applies_what_was_received_and_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    sink.delay = 1.0
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(url="ws://jetstream.test/subscribe", batch_size=5),
        opener=fake.opener(),
    )
    with trio.fail_after(60):
        async with fake.running(), trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            publish_votes(fake, 12)
            await wait_for(lambda: consumer.frames == 12)
            consumer.request_stop()
        # the nursery exited by itself: run returned after draining
    assert len(sink.applied) == 12
    assert consumer.state is ConnectionState.STOPPED
    assert consumer.last_reason == "shutdown"
    assert consumer.reconnects == {}


async def test_request_stop_interrupts_backoff_and_breaker_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(refuse_status=503), MemorySink()
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(url="ws://jetstream.test/subscribe", breaker_threshold=1),
        opener=fake.opener(),
    )
    with trio.fail_after(5):
        async with fake.running(), trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await wait_for(lambda: consumer.state is ConnectionState.BREAKER_OPEN)
            consumer.request_stop()
    assert consumer.state is ConnectionState.STOPPED


async def test_health_and_metrics_report_state_and_counters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    metrics = Metrics()
    with trio.fail_after(120):
        async with running_consumer(fake, sink, metrics=metrics) as consumer:
            await fake.wait_for_connections(1)
            published = publish_votes(fake, 3)
            await wait_for(lambda: len(sink.applied) == 3)
            await fake.drop(abnormal=True)
            await fake.wait_for_connections(2)
            await trio.sleep(0.5)
            health = consumer.health()
            rendered = metrics.render().decode()
    assert health["state"] == "connected"
    assert health["breaker"] == "closed"
    assert health["endpoint"] == "ws://jetstream.test/subscribe"
    assert health["cursor"] == published[-1]["time_us"]
    assert health["lastEventTime"].endswith("Z")
    assert health["lagSeconds"] is not None and health["lagSeconds"] < 5.0
    assert health["applyLagSeconds"] < 1.0
    assert health["frames"] >= 3
    assert health["reconnects"] == {"abnormal": 1}
    assert health["events"]["applied"] == 3
    assert 'coves_jetstream_reconnects_total{reason="abnormal"} 1.0' in rendered
    assert 'coves_jetstream_connection_state{state="connected"} 1.0' in rendered
    assert 'coves_jetstream_connection_state{state="backoff"} 0.0' in rendered
    assert 'coves_jetstream_breaker_state{state="closed"} 1.0' in rendered
    assert "coves_jetstream_frames_total" in rendered
    assert "coves_jetstream_lag_seconds " in rendered
    assert "coves_jetstream_apply_lag_seconds " in rendered


async def test_lag_keeps_growing_while_nothing_can_be_applied(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    metrics = Metrics()
    with trio.fail_after(600):
        async with running_consumer(fake, sink, metrics=metrics) as consumer:
            await fake.wait_for_connections(1)
            publish_votes(fake, 1, "a")
            await wait_for(lambda: len(sink.applied) == 1)
            lag = consumer.lag_seconds()
            assert lag is not None and lag < 1.0
            sink.down = True
            publish_votes(fake, 1, "b")
            await trio.sleep(120.0)
            health = consumer.health()
            rendered = metrics.render().decode()
    assert health["lagSeconds"] >= 119.0
    assert health["applyLagSeconds"] < 1.0
    line = next(x for x in rendered.splitlines() if x.startswith("coves_jetstream_lag_seconds "))
    assert float(line.split()[-1]) >= 119.0


async def test_malformed_frames_reach_the_sink_and_do_not_stop_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(60):
        async with running_consumer(fake, sink) as consumer:
            await fake.wait_for_connections(1)
            conn = fake.live[0]
            from wsproto.events import TextMessage

            await conn.send(TextMessage(data="{not json"))
            publish_votes(fake, 1)
            await wait_for(lambda: len(sink.applied) == 1)
            assert consumer.events["dead_lettered"] == 1
            assert consumer.reconnects == {}


async def test_batch_deadline_counts_from_arrival_not_from_dequeue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    sink.delay = 1.0  # each apply takes a second
    with trio.fail_after(60):
        async with running_consumer(fake, sink, batch_size=100, batch_ms=200):
            await fake.wait_for_connections(1)
            start = trio.current_time()
            publish_votes(fake, 1, "a")  # batch closes at 0.2, commits at 1.2
            await trio.sleep(0.5)
            publish_votes(fake, 1, "b")  # due at 0.7: applied as soon as the sink is free
            await wait_for(lambda: len(sink.applied) == 2)
    assert sink.batch_sizes == [1, 1]
    assert sink.batch_times[0] - start == pytest.approx(1.2, abs=0.01)
    assert sink.batch_times[1] - start == pytest.approx(2.2, abs=0.01)


async def test_oversize_frame_is_reported_as_message_too_big(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(url="ws://jetstream.test/subscribe", idle_timeout=1000.0),
        opener=fake.opener(max_message_size=1024),
        rng=MaxRandom(),
    )
    with trio.fail_after(60):
        async with fake.running(), trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            fake.commit("did:plc:a", VOTE, "big", record={"pad": "x" * 4096})
            await wait_for(lambda: consumer.reconnects.get("message_too_big", 0) >= 1)
            nursery.cancel_scope.cancel()
    assert sink.applied == []


def test_endpoint_shown_without_credentials_or_query() -> None:
    from nurseries.jetstream import _display_url

    assert (
        _display_url("wss://user:secret@jet.example:6008/subscribe?wantedDids=x")
        == "wss://jet.example:6008/subscribe"
    )
    assert _display_url("ws://jet.example/subscribe") == "ws://jet.example/subscribe"
