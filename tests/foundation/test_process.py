"""The real binary: `coves serve` in a subprocess, health, SIGTERM, escalation."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.process import coves_env, free_port, wait_healthy


def test_serve_answers_health_and_exits_zero_on_sigterm(server_dir: Path) -> None:
    """The single-process mode (``--workers 0``): every child in this one process."""
    port = free_port()
    log_path = server_dir / "coves.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coves", "serve", "--port", str(port), "--workers", "0"],
            env=coves_env(server_dir),
            cwd=server_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/xrpc/_health", proc)
        body = health.json()
        assert body["database"]["reachable"] is True
        assert body["children"]["postgres"]["status"] == "running"
        assert body["children"]["xrpc"]["status"] == "running"
        unknown = httpx.get(f"http://127.0.0.1:{port}/xrpc/com.example.nope", timeout=5)
        assert unknown.status_code == 501
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "coves_db_pool_in_use " in metrics and "coves_db_pool_waiting 0.0" in metrics
        assert 'coves_child_up{child="postgres"} 1.0' in metrics
        assert 'coves_http_requests_total{nsid="unknown",status="501"} 1.0' in metrics
        # The event-loop lag monitor runs with the server (admission control reads it).
        lag_samples = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("coves_event_loop_lag_seconds_count")
        )
        assert lag_samples > 0
        assert 'coves_admission_rejected_total{reason="loop_lag"} 0.0' in metrics
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        assert code == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log_path.read_text()
    # Children stopped newest first.
    assert output.index('"child": "xrpc"') < output.rindex('"child": "postgres"')
    assert (server_dir / "data" / "postgres" / "PG_VERSION").exists()
    assert not (server_dir / "data" / "postgres" / "postmaster.pid").exists()


def test_unreachable_database_escalates_to_non_zero_exit(server_dir: Path) -> None:
    port = free_port()
    dead = free_port()  # nothing listens here
    proc = subprocess.run(
        [sys.executable, "-m", "coves", "serve", "--port", str(port)],
        env=coves_env(
            server_dir, DATABASE_URL=f"postgresql://coves@127.0.0.1:{dead}/coves?connect_timeout=1"
        ),
        cwd=server_dir,
        capture_output=True,
        timeout=90,
        check=False,
    )
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 1, output
    assert "child failed too often" in output
    assert '"child": "database"' in output


@pytest.mark.parametrize("argv", [["check-config"]])
def test_invalid_configuration_exits_two_naming_the_variable(
    server_dir: Path, argv: list[str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "coves", *argv],
        env=coves_env(server_dir, COVES_PORT="not-a-port"),
        cwd=server_dir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert b"COVES_PORT" in proc.stderr and b"example" in proc.stderr
