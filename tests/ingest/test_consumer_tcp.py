"""The consumer over real TCP with the production opener (real clock, short timeouts)."""

from __future__ import annotations

import gc
import random
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio

from nurseries.jetstream import (
    ConnectionState,
    ConsumerConfig,
    JetstreamConsumer,
    websocket_opener,
)
from tests.support.consumer import VOTE, publish_votes, wait_for
from tests.support.fake_jetstream import FakeJetstream
from tests.support.memory_sink import MemorySink, event_key
from tests.support.tls import make_tls

US = 1_000_000


def _consumer(url: str, sink: MemorySink) -> JetstreamConsumer:
    config = ConsumerConfig(
        url=url,
        batch_size=50,
        batch_ms=20,
        backoff_base=0.05,
        backoff_cap=0.2,
        connect_timeout=2.0,
        idle_timeout=5.0,
        ping_interval=1.0,
        pong_timeout=1.0,
    )
    return JetstreamConsumer(sink, config, rng=random.Random(3))


async def test_abnormal_close_over_tcp_resumes_at_cursor_without_loss() -> None:
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            consumer = _consumer(url, sink)
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            first = publish_votes(fake, 100, "a")
            await wait_for(lambda: len(sink.applied) == 100)
            committed = sink.cursor
            assert await fake.drop(abnormal=True) == 1
            during = publish_votes(fake, 50, "b")  # while we are away
            await fake.wait_for_connections(2)
            after = publish_votes(fake, 50, "c")
            await wait_for(lambda: len(sink.applied) == 200)
            assert consumer.state is ConnectionState.CONNECTED
            assert consumer.reconnects == {"abnormal": 1}
            nursery.cancel_scope.cancel()
    assert committed is not None
    assert fake.requests[1].cursor == committed - 5 * US
    assert sink.applied_keys() == [event_key(e) for e in first + during + after]
    gc.collect()  # a leaked socket would surface here as a ResourceWarning error


async def test_refused_then_accepted_over_tcp() -> None:
    fake, sink = FakeJetstream(refuse_status=503), MemorySink()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            consumer = _consumer(url, sink)
            await nursery.start(consumer.run)
            await wait_for(lambda: len(fake.requests) >= 3)
            assert consumer.reconnects["rejected"] >= 2
            fake.refuse(None)
            await fake.wait_for_connections(1)
            event = fake.commit("did:plc:a", VOTE, "x")
            await wait_for(lambda: len(sink.applied) == 1)
            nursery.cancel_scope.cancel()
    assert sink.applied_keys() == [event_key(event)]
    gc.collect()


async def test_unreachable_endpoint_is_a_connect_failure() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens here now
    sink = MemorySink()
    consumer = _consumer(f"ws://127.0.0.1:{port}/subscribe", sink)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await wait_for(lambda: consumer.reconnects.get("connect_failed", 0) >= 2)
            nursery.cancel_scope.cancel()
    assert sink.applied == []


async def test_frames_larger_than_trio_websockets_default_limit_arrive() -> None:
    fake, sink = FakeJetstream(), MemorySink()
    record = {"$type": VOTE, "pad": "x" * (5 * 1024 * 1024)}
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            consumer = _consumer(url, sink)
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            event = fake.commit("did:plc:a", VOTE, "big", record=record)
            await wait_for(lambda: len(sink.applied) == 1)
            nursery.cancel_scope.cancel()
    assert sink.applied_keys() == [event_key(event)]
    assert consumer.reconnects == {}


async def test_wss_verifies_the_server_and_streams(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    fake, sink = FakeJetstream(), MemorySink()
    config = ConsumerConfig(url="", backoff_base=0.05, backoff_cap=0.2, connect_timeout=3.0)
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(fake.serve, ssl_context=tls.server))
            assert url.startswith("wss://")
            consumer = JetstreamConsumer(
                sink,
                replace(config, url=url),
                opener=websocket_opener(connect_timeout=3.0, ssl_context=tls.client),
            )
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            event = fake.commit("did:plc:a", VOTE, "tls")
            await wait_for(lambda: len(sink.applied) == 1)
            nursery.cancel_scope.cancel()
    assert sink.applied_keys() == [event_key(event)]


async def test_wss_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    fake, sink = FakeJetstream(), MemorySink()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(fake.serve, ssl_context=tls.server))
            consumer = JetstreamConsumer(  # default trust store: the test CA is unknown
                sink,
                ConsumerConfig(url=url, backoff_base=0.05, backoff_cap=0.2, connect_timeout=3.0),
            )
            await nursery.start(consumer.run)
            await wait_for(lambda: consumer.reconnects.get("connect_failed", 0) >= 2)
            nursery.cancel_scope.cancel()
    assert fake.accepted == 0
    assert sink.applied == []
