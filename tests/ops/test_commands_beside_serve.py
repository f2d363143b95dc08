"""The operator's commands while a real `coves serve` holds the embedded database.

Before, `coves replay` (and every command that starts the embedded
PostgreSQL) refused because the running server held the data directory.
Now they use the running instance's database: replay loads data without
moving the live cursor, status reports the live children, backup dumps a
live instance, and restore refuses to pull the data from under it. The
server writes one access-log line per request.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from bench.gen_stream import INSTANCE_DID
from tests.foundation.test_process import coves_env, free_port, wait_healthy
from tests.ops import populate


def _coves(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coves", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_commands_use_the_running_instance(scratch: Path) -> None:
    port = free_port()
    env = coves_env(
        scratch,
        COVES_PORT=str(port),
        PDS_HEALTH_INTERVAL_SECONDS="0",
        TRUSTED_PROXIES="127.0.0.1/32",
        LOG_LEVEL="info",
        INSTANCE_DID=INSTANCE_DID,  # the generated communities are this instance's
    )
    capture = scratch / "capture.jsonl"
    events = populate.events(300, communities=5)
    capture.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n{broken\n")
    log_path = scratch / "serve.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coves", "serve"],
            env=env,
            cwd=scratch,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base + "/xrpc/_health", proc)

            replay = _coves(env, scratch, "replay", str(capture))
            assert replay.returncode == 0, replay.stderr
            assert "using the running instance's database" in replay.stderr
            assert "events:        301" in replay.stdout
            assert "dead-lettered: 1" in replay.stdout
            assert "bad_json: 1 (the frame is not JSON)" in replay.stdout

            status = _coves(env, scratch, "status", "--json")
            assert status.returncode == 0, status.stdout + status.stderr
            report = json.loads(status.stdout)
            assert report["healthy"] is True
            assert report["database"]["via"] == "embedded (running instance)"
            assert report["database"]["cursors"] == []  # the replay moved no cursor
            assert report["database"]["deadLetters"]["byReason"] == {"bad_json": 1}
            health = report["server"]["health"]
            assert health["children"]["xrpc"]["status"] == "running"
            # With worker processes, the operational children run in the ingesting one.
            children = {
                name
                for process in health.get("processes", [health])
                for name in process["children"]
            }
            assert "ops" in children

            readable = _coves(env, scratch, "status")
            assert readable.returncode == 0 and readable.stdout.strip().endswith("healthy")
            assert "ops" in readable.stdout and "running" in readable.stdout

            # The replayed data is served at once by the running instance.
            listed = httpx.get(
                base + "/xrpc/social.coves.community.list",
                params={"limit": 50},
                headers={"X-Forwarded-For": "198.51.100.7", "X-Request-ID": "ops-test-1"},
                timeout=10,
            )
            assert listed.status_code == 200 and len(listed.json()["communities"]) == 5

            backup = _coves(env, scratch, "backup")
            assert backup.returncode == 0, backup.stderr
            dump = next((scratch / "data" / "backups").glob("coves-*.dump"))

            restore = _coves(env, scratch, "restore", str(dump), "--yes")
            assert restore.returncode == 1
            assert "stop it first" in restore.stderr
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "coves.access"]
    (listing,) = [a for a in access if a.get("request_id") == "ops-test-1"]
    assert listing["nsid"] == "social.coves.community.list"
    assert listing["status"] == 200 and listing["method"] == "GET"
    assert listing["client"] == "198.51.100.7"  # from the trusted proxy's X-Forwarded-For
    assert listing["duration_ms"] >= 0 and listing["bytes"] > 0
    assert "limit" not in json.dumps(listing)  # never the query string
    health = [a for a in access if a.get("path") == "/xrpc/_health" and a["status"] == 200]
    assert health and health[-1]["client"] == "127.0.0.1" and health[-1]["bytes"] > 0
