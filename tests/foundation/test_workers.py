"""The real binary with several processes: `coves serve --workers 2` over real sockets.

Two API workers share the port, one process ingests from a fake Jetstream
(real websocket) and the caches are dropped across processes through
PostgreSQL notifications; a killed worker is restarted, SIGTERM stops
everything cleanly, and no worker outlives a killed supervisor.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.foundation.test_process import coves_env, free_port
from tests.support import events as ev
from tests.support.database import TestPostgres
from tests.support.fake_jetstream import FakeJetstream
from tests.support.tokens import unsigned

INSTANCE = "did:web:localhost"
COMMUNITY = ev.did("workers-community")
VIEWER = ev.did("workers-viewer")
AUTHOR = ev.did("workers-author")
# sort=new pages by keyset: no listing snapshot (reused for seconds per process) in the way.
TIMELINE = "/xrpc/social.coves.feed.getTimeline?sort=new"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def viewer_headers() -> dict[str, str]:
    token = unsigned({"typ": "JWT", "alg": "ES256"}, {"iss": VIEWER, "sub": VIEWER})
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def deployment(
    server_dir: Path, pg: TestPostgres, jetstream_url: str, **extra: str
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str, Path]]:
    name = await trio.to_thread.run_sync(pg.create_database)
    port = free_port()
    log_path = server_dir / f"coves-{port}.log"
    env = coves_env(
        server_dir,
        DATABASE_URL=pg.conninfo(name),
        JETSTREAM_ENABLED="true",
        JETSTREAM_URL=jetstream_url,
        JETSTREAM_BATCH_MS="20",
        SKIP_DID_WEB_VERIFICATION="true",
        AUTH_SKIP_VERIFY="true",
        RESPONSE_CACHE_SECONDS="0",
        VIEWER_CACHE_SECONDS="60",
        RATE_LIMIT_GENERAL="100000",
        **extra,
    )
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coves", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=server_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, f"http://127.0.0.1:{port}", log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            await trio.to_thread.run_sync(proc.wait)
        await trio.to_thread.run_sync(pg.drop_database, name)


async def until(
    what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], timeout: float = 60
) -> Any:
    """Poll the async ``check`` until it returns something truthy."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"coves exited early with {proc.returncode} ({what})")
            try:
                result = await check()
            except httpx.TransportError as exc:
                last = exc
            else:
                if result:
                    return result
                last = result
            await trio.sleep(0.2)
    raise AssertionError(f"{what}: never happened (last: {last!r})")


async def processes(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/xrpc/_health")
    if response.status_code != 200:
        return {}
    return {p["name"]: p for p in response.json()["processes"] if p["healthy"]}


async def test_two_workers_share_the_port_invalidate_across_processes_and_restart(
    server_dir: Path, pg: TestPostgres
) -> None:
    fake = FakeJetstream()
    stream = ev.Stream()
    post = ev.uri(COMMUNITY, "social.coves.community.post", "3kworkpost0001")
    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            async with deployment(server_dir, pg, url) as (proc, base, log_path):
                fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each
                async with httpx.AsyncClient(base_url=base, timeout=10, limits=fresh) as http:
                    # Both API workers and the ingester are up and beating.
                    async def all_up() -> dict[str, dict[str, Any]] | None:
                        found = await processes(http)
                        wanted = {"supervisor", "api-0", "api-1", "ingest"}
                        return found if wanted <= set(found) else None

                    up = await until("all processes up", all_up, proc)
                    assert up["api-0"]["pid"] != up["api-1"]["pid"]
                    assert up["api-0"]["role"] == "api" and up["ingest"]["role"] == "ingest"

                    async def consumer_connected() -> bool:
                        found = await processes(http)
                        jetstream = found.get("ingest", {}).get("children", {}).get("jetstream")
                        state = (jetstream or {}).get("details", {}).get("state")
                        return state == "connected"

                    await until("the ingester connected", consumer_connected, proc)

                    # The ingester indexes a community, a post and the viewer's subscription.
                    fake.publish(stream.identity(COMMUNITY, "workers.community.localhost"))
                    fake.publish(
                        stream.commit(
                            COMMUNITY,
                            "social.coves.community.profile",
                            "self",
                            ev.community_record("workers", INSTANCE, AUTHOR),
                        )
                    )
                    fake.publish(
                        stream.commit(
                            COMMUNITY,
                            "social.coves.community.post",
                            "3kworkpost0001",
                            ev.post_record(COMMUNITY, AUTHOR),
                        )
                    )
                    fake.publish(
                        stream.commit(
                            VIEWER,
                            "social.coves.community.subscription",
                            "3kworksubs0001",
                            ev.subscription_record(COMMUNITY),
                        )
                    )

                    async def timeline() -> dict[str, Any] | None:
                        response = await http.get(TIMELINE, headers=viewer_headers())
                        body: dict[str, Any] = response.json()
                        return body if response.status_code == 200 and body["feed"] else None

                    body = await until("the post in the viewer's timeline", timeline, proc)
                    assert body["feed"][0]["post"]["uri"] == post
                    assert not body["feed"][0]["post"].get("viewer", {}).get("vote")

                    # Every worker caches the viewer's timeline (60 s allowed, 2 s declared:
                    # entries stay in the cache when they expire, until dropped or replaced).
                    async def cached_everywhere() -> bool:
                        for _ in range(4):
                            await http.get(TIMELINE, headers=viewer_headers())
                        found = await processes(http)
                        return all(
                            found.get(name, {}).get("responseCache", {}).get("entries", 0) >= 1
                            for name in ("api-0", "api-1")
                        )

                    await until("both workers caching", cached_everywhere, proc)

                    # The viewer votes; the ingester applies it and tells every worker.
                    fake.publish(
                        stream.commit(
                            VIEWER, "social.coves.feed.vote", "3kworkvote0001", ev.vote_record(post)
                        )
                    )

                    async def dropped_everywhere() -> bool:
                        found = await processes(http)
                        return all(
                            found.get(name, {}).get("responseCache", {}).get("entries") == 0
                            and found[name]["children"]["invalidation"]["details"]["received"] >= 1
                            for name in ("api-0", "api-1")
                        )

                    await until(
                        "both workers dropped the viewer's entries", dropped_everywhere, proc
                    )
                    for _ in range(6):  # whichever worker answers: the vote is there
                        body = (await http.get(TIMELINE, headers=viewer_headers())).json()
                        assert body["feed"][0]["post"]["viewer"]["vote"] == "up"

                    # A killed worker is restarted; the port keeps being served meanwhile.
                    victim = up["api-0"]["pid"]
                    os.kill(victim, signal.SIGKILL)

                    async def replaced() -> bool:
                        found = await processes(http)
                        again = found.get("api-0")
                        return again is not None and again["pid"] != victim

                    await until("api-0 restarted", replaced, proc)
                    assert not alive(victim)
                    for _ in range(5):
                        assert (
                            await http.get(TIMELINE, headers=viewer_headers())
                        ).status_code == 200
                    metrics = (await http.get("/metrics")).text
                    assert 'coves_child_restarts_total{child="api-0"} 1.0' in metrics
                    # Counters from every process are added up, whichever one answered.
                    served = [
                        line
                        for line in metrics.splitlines()
                        if line.startswith('coves_http_requests_total{nsid="social.coves.feed')
                    ]
                    assert served and "pid=" not in served[0]

                    pids = [p["pid"] for p in (await processes(http)).values()]
                # SIGTERM: everything drains and stops, the supervisor exits 0.
                proc.send_signal(signal.SIGTERM)
                code = await trio.to_thread.run_sync(lambda: proc.wait(timeout=60))
                assert code == 0, log_path.read_text()[-3000:]
                assert not [pid for pid in pids if alive(pid)]
            nursery.cancel_scope.cancel()


async def test_no_worker_outlives_a_killed_supervisor(server_dir: Path, pg: TestPostgres) -> None:
    fake = FakeJetstream()
    with trio.fail_after(180):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            async with deployment(server_dir, pg, url) as (proc, base, _log):
                async with httpx.AsyncClient(base_url=base, timeout=10) as http:

                    async def all_up() -> list[int] | None:
                        found = await processes(http)
                        wanted = {"api-0", "api-1", "ingest"}
                        return [found[n]["pid"] for n in wanted] if wanted <= set(found) else None

                    children = await until("workers up", all_up, proc)
                proc.kill()  # SIGKILL: no chance to stop anyone
                await trio.to_thread.run_sync(proc.wait)
                deadline = time.monotonic() + 30
                while [pid for pid in children if alive(pid)] and time.monotonic() < deadline:
                    await trio.sleep(0.2)
                assert not [pid for pid in children if alive(pid)]
            nursery.cancel_scope.cancel()


def test_split_roles_need_a_shared_database(server_dir: Path) -> None:
    for role in ("api", "ingest"):
        proc = subprocess.run(
            [sys.executable, "-m", "coves", "serve", "--role", role],
            env=coves_env(server_dir),
            cwd=server_dir,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2
        assert b"DATABASE_URL" in proc.stderr


def test_a_taken_port_refuses_to_start_in_one_line(server_dir: Path, pg: TestPostgres) -> None:
    name = pg.create_database()
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            proc = subprocess.run(
                [sys.executable, "-m", "coves", "serve", "--port", str(port), "--workers", "2"],
                env=coves_env(server_dir, DATABASE_URL=pg.conninfo(name)),
                cwd=server_dir,
                capture_output=True,
                timeout=120,
                check=False,
            )
    finally:
        pg.drop_database(name)
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 2, output
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "Traceback" not in output


async def test_a_coves_folder_in_the_working_directory_does_not_replace_the_package(
    server_dir: Path, pg: TestPostgres
) -> None:
    """An operator runs the installed ``coves`` from a directory that has a folder named
    ``coves`` (a data directory, a checkout's parent...): every process it starts must
    run the installed package, not import that folder."""
    shadow = server_dir / "coves"
    shadow.mkdir()
    marker = server_dir / "shadow-imported"
    (shadow / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n"
    )
    script = Path(sys.executable).parent / "coves"  # the console script pip installed
    assert script.exists()
    name = await trio.to_thread.run_sync(pg.create_database)
    port = free_port()
    log_path = server_dir / "coves.log"
    env = coves_env(server_dir, DATABASE_URL=pg.conninfo(name), RATE_LIMIT_GENERAL="100000")
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [str(script), "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=server_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        with trio.fail_after(180):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

                async def all_up() -> dict[str, dict[str, Any]] | None:
                    found = await processes(http)
                    return found if {"api-0", "ingest"} <= set(found) else None

                try:
                    await until("the workers up", all_up, proc, timeout=150)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{log_path.read_text()[-3000:]}") from None
        assert not marker.exists()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await trio.to_thread.run_sync(lambda: proc.wait(60))
        await trio.to_thread.run_sync(pg.drop_database, name)
