"""The consumer as a supervised child: factory, _health details, /metrics, shutdown."""

from __future__ import annotations

import trio
import trio.testing

from coves.config import test_settings
from coves.metrics import Metrics
from nurseries.jetstream import ConsumerConfig, jetstream_child
from nurseries.supervisor import ChildStatus, open_supervisor
from tests.support.consumer import publish_votes, wait_for
from tests.support.fake_jetstream import FakeJetstream
from tests.support.memory_sink import MemorySink


def test_disabled_by_configuration_without_building_the_sink() -> None:
    built: list[MemorySink] = []

    def sink() -> MemorySink:
        built.append(MemorySink())
        return built[-1]

    settings = test_settings(jetstream_enabled=False)
    assert jetstream_child(settings, sink, metrics=Metrics()) is None
    assert built == []
    spec = jetstream_child(settings.replace(jetstream_enabled=True), sink, metrics=Metrics())
    assert spec is not None and spec.name == "jetstream" and len(built) == 1


def test_config_follows_settings() -> None:
    settings = test_settings(
        jetstream_url="ws://example.test/subscribe",
        jetstream_rewind_seconds=10.0,
        jetstream_batch_size=50,
        jetstream_batch_ms=100,
        jetstream_idle_timeout_seconds=45.0,
        jetstream_ping_interval_seconds=15.0,
        jetstream_pong_timeout_seconds=3.0,
        jetstream_connect_timeout_seconds=4.0,
        jetstream_max_message_bytes=6_000_000,
        jetstream_breaker_threshold=7,
        jetstream_breaker_cooldown_seconds=90.0,
    )
    config = ConsumerConfig.from_settings(settings)
    assert config.url == "ws://example.test/subscribe"
    assert (config.rewind_seconds, config.batch_size, config.batch_ms) == (10.0, 50, 100)
    assert (config.idle_timeout, config.ping_interval, config.pong_timeout) == (45.0, 15.0, 3.0)
    assert (config.connect_timeout, config.max_message_bytes) == (4.0, 6_000_000)
    assert (config.breaker_threshold, config.breaker_cooldown) == (7, 90.0)
    assert config.queue_frames >= config.batch_size
    assert config.backoff_base == 1.0 and config.backoff_cap == 60.0


def test_message_size_floor_is_enforced_by_configuration() -> None:
    import pytest

    from coves.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="JETSTREAM_MAX_MESSAGE_BYTES"):
        load_settings({"JETSTREAM_MAX_MESSAGE_BYTES": "1048576"}, dotenv=None)
    settings = load_settings({}, dotenv=None)
    assert settings.jetstream_max_message_bytes >= 5_000_000


async def test_supervised_child_reports_health_and_metrics_and_drains_on_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    sink.delay = 0.5
    metrics = Metrics()
    settings = test_settings(jetstream_enabled=True, jetstream_url="ws://jetstream.test/subscribe")
    with trio.fail_after(120):
        async with fake.running():
            async with open_supervisor() as supervisor:
                spec = jetstream_child(
                    settings, lambda: sink, metrics=metrics, opener=fake.opener()
                )
                assert spec is not None
                assert spec.name == "jetstream"
                assert not spec.critical  # reads keep working without ingestion
                await supervisor.start(spec)
                await fake.wait_for_connections(1)
                publish_votes(fake, 5)
                await wait_for(lambda: len(sink.applied) == 5)
                report = supervisor.health_report()["jetstream"]
                assert report["status"] == "running"
                assert report["details"]["state"] == "connected"
                assert report["details"]["breaker"] == "closed"
                assert report["details"]["frames"] == 5
                assert b"coves_jetstream_frames_total 5.0" in metrics.render()
                publish_votes(fake, 3, "late")
                details = spec.details
                assert details is not None
                await wait_for(lambda: details()["frames"] == 8)
                assert len(sink.applied) < 8  # still applying when the shutdown starts
            # leaving the supervisor asked the child to stop: received frames were applied
            assert supervisor.state("jetstream").status is ChildStatus.STOPPED
    assert len(sink.applied) == 8
