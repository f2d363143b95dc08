"""The firehose source: configuration, URLs, wiring, real TCP, the idle and ping watchdogs."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from coves.config import ConfigError, load_settings, test_settings
from coves.ingest.stream import source_name, subscribe_repos_url
from coves.metrics import Metrics
from nurseries.jetstream import (
    FIREHOSE,
    ConsumerConfig,
    JetstreamConsumer,
    firehose_children,
    websocket_opener,
)
from tests.support.consumer import wait_for
from tests.support.events import VOTE, did
from tests.support.fake_firehose import FakeFirehose
from tests.support.fake_repo import Write
from tests.support.memory_sink import FirehoseMemorySink

VOTER = did("voter")


def test_subscribe_repos_url() -> None:
    assert (
        subscribe_repos_url("wss://pds.example")
        == "wss://pds.example/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
    )
    assert (
        subscribe_repos_url("ws://127.0.0.1:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=9", 41)
        == "ws://127.0.0.1:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=41"
    )
    assert subscribe_repos_url("wss://relay.example/", 7).endswith("subscribeRepos?cursor=7")
    with pytest.raises(ValueError):
        subscribe_repos_url("https://pds.example")
    with pytest.raises(ValueError):
        subscribe_repos_url("wss://pds.example", -1)
    assert source_name("wss://PDS.example/xrpc/com.atproto.sync.subscribeRepos") == (
        "firehose:pds.example"
    )
    assert source_name("ws://127.0.0.1:2583") == "firehose:127.0.0.1:2583"


def test_configuration() -> None:
    settings = load_settings(
        {"FIREHOSE_URL": "wss://a.example, ws://127.0.0.1:2583", "FIREHOSE_VERIFY": "true"}
    )
    assert settings.firehose_urls == ("wss://a.example", "ws://127.0.0.1:2583")
    assert settings.firehose_verify is True and settings.jetstream_enabled is True
    with pytest.raises(ConfigError, match="FIREHOSE_URL"):
        load_settings({"FIREHOSE_URL": "https://a.example"})
    with pytest.raises(ConfigError, match="FIREHOSE_URL"):
        load_settings({"FIREHOSE_URL": "wss://a.example,wss://a.example"})
    config = ConsumerConfig.from_settings(
        test_settings(jetstream_batch_size=50, firehose_idle_timeout_seconds=300.0),
        firehose_url="ws://127.0.0.1:2583",
    )
    assert (config.kind, config.name, config.url) == (
        FIREHOSE,
        "firehose:127.0.0.1:2583",
        "ws://127.0.0.1:2583",
    )
    assert (config.batch_size, config.idle_timeout, config.rewind_seconds) == (50, 300.0, 0.0)


def test_one_child_per_firehose_each_with_its_own_sink() -> None:
    urls: list[str] = []

    def sink(url: str) -> FirehoseMemorySink:
        urls.append(url)
        return FirehoseMemorySink()

    settings = test_settings(firehose_urls=("ws://a.test", "wss://b.test:444"))
    specs = firehose_children(settings, sink, metrics=Metrics())
    assert [s.name for s in specs] == ["firehose:a.test", "firehose:b.test:444"]
    assert urls == ["ws://a.test", "wss://b.test:444"]
    assert all(not s.critical for s in specs)
    assert firehose_children(test_settings(), sink, metrics=Metrics()) == []


def _config(url: str = "ws://pds.test", **kw: object) -> ConsumerConfig:
    settings: dict[str, object] = {
        "url": url,
        "kind": FIREHOSE,
        "name": "firehose:pds.test",
        "rewind_seconds": 0.0,
        "batch_size": 20,
        "batch_ms": 20,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "connect_timeout": 2.0,
    }
    settings.update(kw)
    return ConsumerConfig(**settings)  # type: ignore[arg-type]


def _votes(fake: FakeFirehose, n: int, prefix: str) -> None:
    for i in range(n):
        fake.write(VOTER, Write("create", VOTE, f"{prefix}{i}", {"direction": "up"}))


async def test_binary_frames_over_real_tcp_resume_after_an_abnormal_close() -> None:
    fake, sink = FakeFirehose(), FirehoseMemorySink()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            consumer = JetstreamConsumer(
                sink,
                _config(url.removesuffix("/subscribe")),
                rng=random.Random(1),
                opener=websocket_opener(8 * 1024 * 1024, 2.0),
            )
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            _votes(fake, 60, "a")
            await wait_for(lambda: len(sink.applied) == 60)
            assert await fake.drop(abnormal=True) == 1
            _votes(fake, 40, "b")
            await wait_for(lambda: len(sink.applied) == 100)
            nursery.cancel_scope.cancel()
    assert [r.cursor for r in fake.requests] == [0, 60]
    assert fake.requests[0].target.startswith("/xrpc/com.atproto.sync.subscribeRepos?")
    assert [e["seq"] for e in sink.applied] == list(range(1, 101))
    assert consumer.reconnects == {"abnormal": 1}


async def test_a_quiet_pds_is_kept_while_pongs_answer_and_dropped_when_they_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeFirehose(), FirehoseMemorySink()
    consumer = JetstreamConsumer(
        sink,
        _config(idle_timeout=600.0, ping_interval=30.0, pong_timeout=10.0),
        opener=fake.opener(),
        rng=random.Random(2),
    )
    async with fake.running(), trio.open_nursery() as nursery:
        await nursery.start(consumer.run)
        await fake.wait_for_connections(1)
        await trio.sleep(500)  # nothing sent for minutes: a quiet PDS, not a dead one
        assert consumer.reconnects == {}
        await trio.sleep(200)
        assert consumer.reconnects == {"idle_timeout": 1}
        await fake.wait_for_connections(2)
        fake.stop_answering_pings()
        await trio.sleep(45)
        assert consumer.reconnects["pong_timeout"] == 1
        nursery.cancel_scope.cancel()
