"""The signals an operator reads: access log, query timing, auth successes, ops facts."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families

from coves.auth.base import AuthInput, Viewer
from coves.config import test_settings
from coves.db import Database
from coves.db.observe import QueryObserver, shape_name
from coves.db.queries import ops as q
from coves.metrics import Metrics
from coves.xrpc.accesslog import AccessLog
from nurseries.opsfacts import OpsFacts
from tests.foundation.conftest import offline_context
from tests.foundation.test_http import PEER, make_app


def records(buffer: io.StringIO, logger: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("logger") == logger]


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


# -- access log -------------------------------------------------------------------------


async def test_access_log_line_per_request(log_output: io.StringIO) -> None:
    settings = test_settings(trusted_proxies=(), access_log_sample_rate=1.0)
    app, _ = make_app(offline_context(settings))
    client = app.test_client()
    headers = {"X-Request-ID": "req-1", "X-Forwarded-For": "198.51.100.1"}
    ok = await client.get(
        "/xrpc/test.echo", query_string={"q": "private words"}, headers=headers, scope_base=PEER
    )
    assert ok.status_code == 200
    failed = await client.get("/xrpc/test.dbdown", scope_base=PEER)
    assert failed.status_code == 503
    missing = await client.get("/no/such/route", scope_base=PEER)
    assert missing.status_code == 404

    echo, down, route = records(log_output, "coves.access")
    assert echo["event"] == "request" and echo["nsid"] == "test.echo"
    assert echo["method"] == "GET" and echo["status"] == 200
    assert echo["request_id"] == "req-1" and echo["bytes"] == len(await ok.get_data())
    # The peer is not a trusted proxy: its X-Forwarded-For is not believed.
    assert echo["client"] == "203.0.113.9"
    assert "private words" not in log_output.getvalue()
    assert down["status"] == 503 and down["nsid"] == "test.dbdown"
    assert route["path"] == "/no/such/route" and route["status"] == 404
    assert "nsid" not in route


async def test_access_log_trusts_only_configured_proxies(log_output: io.StringIO) -> None:
    import ipaddress

    settings = test_settings(trusted_proxies=(ipaddress.ip_network("203.0.113.0/24"),))
    app, _ = make_app(offline_context(settings))
    await app.test_client().get(
        "/xrpc/test.echo", headers={"X-Forwarded-For": "198.51.100.1"}, scope_base=PEER
    )
    (line,) = records(log_output, "coves.access")
    assert line["client"] == "198.51.100.1"


async def test_sampling_keeps_every_server_error(log_output: io.StringIO) -> None:
    app, _ = make_app(offline_context(test_settings(access_log_sample_rate=0.0)))
    client = app.test_client()
    for _ in range(5):
        await client.get("/xrpc/test.echo", scope_base=PEER)
    await client.get("/xrpc/test.explode", scope_base=PEER)
    await client.get("/xrpc/test.dbdown", scope_base=PEER)
    lines = records(log_output, "coves.access")
    assert [line["status"] for line in lines] == [500, 503]


async def test_access_log_can_be_turned_off(log_output: io.StringIO) -> None:
    app, _ = make_app(offline_context(test_settings(access_log_enabled=False)))
    await app.test_client().get("/xrpc/test.dbdown", scope_base=PEER)
    await app.test_client().get("/metrics", scope_base=PEER)
    assert records(log_output, "coves.access") == []


def test_sample_rate_is_a_share_of_requests() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95])
    log = AccessLog(sample_rate=0.1, trusted_proxies=(), rng=lambda: next(draws))
    assert [log.wanted(200) for _ in range(4)] == [True, False, True, False]
    assert log.wanted(502)  # no draw needed


# -- authentication ----------------------------------------------------------------------


class _Fixed:
    def __init__(self, method: str) -> None:
        self.method = method

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        return Viewer(did="did:plc:viewer", method=self.method)  # type: ignore[arg-type]


async def test_successful_authentications_are_counted_by_method() -> None:
    from dataclasses import replace

    ctx = replace(offline_context(), authenticator=_Fixed("oauth_dpop"))
    app, _ = make_app(ctx)
    for _ in range(2):
        response = await app.test_client().get(
            "/xrpc/test.private", headers={"Authorization": "DPoP x"}, scope_base=PEER
        )
        assert response.status_code == 200
    assert samples(ctx.metrics, "coves_auth_successes_total") == {(("method", "oauth_dpop"),): 2}
    # The failure family is exported before the first failure, for dashboards.
    assert "coves_auth_failures_total" in ctx.metrics.render().decode()


# -- query timing ------------------------------------------------------------------------


async def test_queries_are_timed_by_the_function_that_issued_them(
    db: Database, log_output: io.StringIO
) -> None:
    metrics = Metrics()
    db.instrument(QueryObserver(metrics, slow_ms=30))
    with trio.fail_after(20):
        await q.newest_dead_letter_id(db)
        await q.dead_letter_counts(db)
        await q.flush_commits(db)
        await _slow_lookup(db)
    counts = samples(metrics, "coves_db_query_duration_seconds_count")
    assert counts == {
        (("query", "ops.newest_dead_letter_id"),): 1,
        (("query", "ops.dead_letter_counts"),): 1,
        (("query", "ops.flush_commits"),): 1,
        (("query", "test_observability._slow_lookup"),): 1,
    }
    assert samples(metrics, "coves_db_slow_queries_total") == {
        (("query", "test_observability._slow_lookup"),): 1
    }
    (slow,) = [r for r in records(log_output, "coves.db.slow")]
    assert slow["event"] == "slow query" and slow["duration_ms"] >= 50
    assert slow["statement"] == "SELECT pg_sleep(0.05), %s::text AS secret_param"
    assert "hunter2" not in log_output.getvalue()  # parameters never logged


async def _slow_lookup(db: Database) -> Any:
    return await db.fetchval("SELECT pg_sleep(0.05),\n   %s::text AS secret_param", ("hunter2",))


def _factory() -> Any:
    return lambda conn: None


def test_shape_names_are_short_and_stable() -> None:
    # A closure handed to Database.run is named by the function that made it.
    assert shape_name(_factory().__code__) == "test_observability._factory"
    assert shape_name(q.flush_commits.__code__) == "ops.flush_commits"
    assert shape_name(None) == "unknown"


async def test_an_uninstrumented_database_measures_nothing(db: Database) -> None:
    with trio.fail_after(10):
        assert await db.fetchval("SELECT 1") == 1  # no observer: no frame lookups, no metric


# -- operational facts -----------------------------------------------------------------


async def test_ops_facts_serve_the_last_reading(db: Database, tmp_path: Path) -> None:
    metrics = Metrics()
    facts = OpsFacts(db, metrics, data_dir=tmp_path, backup_dir=tmp_path / "not-yet")
    before = samples(metrics, "coves_backup_last_success_timestamp_seconds")
    assert before == {}  # nothing read yet: no false "never backed up"
    await db.execute(
        "INSERT INTO dead_letters (reason, raw) VALUES ('bad_json', 'x'), ('bad_json', 'y'), "
        "('security', 'z')"
    )
    await db.execute(
        "INSERT INTO backups (started_at, finished_at, ok, file, size_bytes) "
        "VALUES (now(), '2026-01-02T03:04:05Z', true, '/b/x.dump', 1234)"
    )
    with trio.fail_after(10):
        assert await facts.refresh()
    assert samples(metrics, "coves_dead_letters") == {
        (("reason", "bad_json"),): 2,
        (("reason", "security"),): 1,
    }
    assert samples(metrics, "coves_backup_last_success_timestamp_seconds") == {(): 1767323045.0}
    assert samples(metrics, "coves_backup_last_failure_timestamp_seconds") == {(): 0.0}
    assert samples(metrics, "coves_backup_last_size_bytes") == {(): 1234.0}
    free = samples(metrics, "coves_disk_free_bytes")
    assert set(free) == {(("dir", "data"),), (("dir", "backups"),)}
    assert all(v > 0 for v in free.values())
    details = facts.details()
    assert details["deadLetters"] == 3 and details["lastBackup"].startswith("2026-01-02")

    # The database goes away: the last reading stays, the error is shown.
    await db.close()
    with trio.fail_after(30):
        assert not await facts.refresh()
    assert samples(metrics, "coves_dead_letters")[(("reason", "bad_json"),)] == 2
    assert facts.details()["error"]


def test_slow_query_log_off_at_zero(log_output: io.StringIO) -> None:
    metrics = Metrics()
    QueryObserver(metrics, slow_ms=0).observe(q.flush_commits.__code__, 30.0, "SELECT 1")
    assert records(log_output, "coves.db.slow") == []
    assert samples(metrics, "coves_db_slow_queries_total") == {}
    assert samples(metrics, "coves_db_query_duration_seconds_count") == {
        (("query", "ops.flush_commits"),): 1
    }


def test_a_closed_log_stream_never_breaks_a_request(capsys: Any) -> None:
    from coves.logs import configure_logging, write_line

    broken = io.StringIO()
    configure_logging("info", "json", stream=broken)
    broken.close()
    try:
        write_line("coves.access", "request", {"status": 200})  # reported, not raised
    finally:
        configure_logging("debug", "console")
    assert "Logging error" in capsys.readouterr().err


async def test_a_request_abandoned_before_any_answer_is_logged_as_499(
    log_output: io.StringIO,
) -> None:
    from coves.xrpc.dispatch import XrpcASGI
    from coves.xrpc.ratelimit import RateLimiter, default_limit_classes

    ctx = offline_context()

    async def slow_route(scope: Any, receive: Any, send: Any) -> None:
        await trio.sleep_forever()  # a Quart route still working when the client leaves

    app = XrpcASGI(ctx, {}, slow_route, RateLimiter(default_limit_classes(ctx.settings)))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/xrpc/_health",
        "headers": [(b"x-request-id", b"gone-1")],
        "client": ("203.0.113.9", 5000),
    }

    async def nothing() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def ignore(message: Any) -> None:
        return None

    with trio.move_on_after(0.2):  # the server cancels the request when its client goes
        await app(scope, nothing, ignore)
    (line,) = records(log_output, "coves.access")
    assert (line["status"], line["path"], line["request_id"]) == (499, "/xrpc/_health", "gone-1")
