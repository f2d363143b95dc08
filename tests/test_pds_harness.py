"""The reference PDS harness itself: accounts, records, restarts, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
import trio

from tests.support.pds import PdsHarnessError, TestPds, free_port, start_test_pds

ROOT = Path(__file__).resolve().parent.parent


async def test_account_write_and_read_a_record(pds: TestPds) -> None:
    with trio.fail_after(30):
        account = await pds.create_account()
        assert account.did.startswith("did:plc:")
        assert account.handle.endswith("." + pds.handle_domain)

        doc = await pds.resolve_did(account.did)
        assert f"at://{account.handle}" in doc["alsoKnownAs"]
        endpoints = [s["serviceEndpoint"] for s in doc["service"] if s["id"] == "#atproto_pds"]
        assert endpoints == [pds.url]

        record = {
            "$type": "social.coves.community.subscription",
            "subject": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
            "createdAt": "2025-01-01T00:00:00.000Z",
        }
        created = await pds.xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            token=account.access_jwt,
            json={
                "repo": account.did,
                "collection": "social.coves.community.subscription",
                "record": record,
            },
        )
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["uri"].startswith(f"at://{account.did}/social.coves.community.subscription/")
        assert len(body["commit"]["rev"]) == 13

        rkey = body["uri"].rsplit("/", 1)[1]
        got = await pds.xrpc(
            "GET",
            "com.atproto.repo.getRecord",
            params={
                "repo": account.did,
                "collection": "social.coves.community.subscription",
                "rkey": rkey,
            },
        )
        assert got.status_code == 200
        assert got.json()["cid"] == body["cid"]
        assert got.json()["value"] == record


async def test_pds_rejects_bad_token_and_requires_invites(pds: TestPds) -> None:
    with trio.fail_after(30):
        resp = await pds.xrpc(
            "POST",
            "com.atproto.server.createAccount",
            json={
                "handle": f"{pds.unique_name()}.{pds.handle_domain}",
                "email": "x@coves.test",
                "password": "a-long-password-1",
            },
        )
        assert resp.status_code == 400
        assert resp.json()["error"] == "InvalidInviteCode"

        resp = await pds.xrpc("POST", "com.atproto.server.createInviteCode", json={"useCount": 1})
        assert resp.status_code == 401

        resp = await pds.xrpc("GET", "com.atproto.server.getSession", token="not-a-token")
        assert resp.status_code in (400, 401)


async def test_oauth_server_metadata_on_http_loopback(pds: TestPds) -> None:
    with trio.fail_after(30):
        async with httpx.AsyncClient(timeout=10) as client:
            meta = (await client.get(f"{pds.url}/.well-known/oauth-authorization-server")).json()
            resource = (await client.get(f"{pds.url}/.well-known/oauth-protected-resource")).json()
        assert meta["issuer"] == pds.url
        assert meta["token_endpoint"].startswith(pds.url)
        assert "ES256" in meta["dpop_signing_alg_values_supported"]
        assert resource["authorization_servers"] == [pds.url]


async def test_restart_keeps_accounts_and_repos(pds: TestPds) -> None:
    with trio.fail_after(120):
        account = await pds.create_account()
        created = await pds.xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            token=account.access_jwt,
            json={
                "repo": account.did,
                "collection": "social.coves.community.subscription",
                "record": {
                    "$type": "social.coves.community.subscription",
                    "subject": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
                    "createdAt": "2025-01-01T00:00:00.000Z",
                },
            },
        )
        assert created.status_code == 200, created.text
        await trio.to_thread.run_sync(lambda: pds.restart_pds(kill=True))
        assert pds.running
        resp = await pds.xrpc(
            "POST",
            "com.atproto.server.createSession",
            json={"identifier": account.handle, "password": account.password},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["did"] == account.did
        got = await pds.xrpc(
            "GET",
            "com.atproto.repo.getRecord",
            params={
                "repo": account.did,
                "collection": "social.coves.community.subscription",
                "rkey": created.json()["uri"].rsplit("/", 1)[1],
            },
        )
        assert got.status_code == 200, got.text
        assert got.json()["cid"] == created.json()["cid"]


class _AlwaysHealthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_restart_does_not_mistake_another_server_for_the_pds(tmp_path: Path) -> None:
    """While the PDS restarts its port is free; something else answering there (any
    server would pass a health check) must not be taken for the restarted PDS."""
    pds = start_test_pds(tmp_path / "pds")
    try:
        pds.stop_pds(kill=True)
        squatter = ThreadingHTTPServer(("127.0.0.1", pds.port), _AlwaysHealthy)
        thread = threading.Thread(target=squatter.serve_forever, daemon=True)
        thread.start()
        try:
            assert httpx.get(f"{pds.url}/xrpc/_health", timeout=10).status_code == 200
            with pytest.raises(PdsHarnessError, match="EADDRINUSE"):
                pds.start_pds(deadline=time.monotonic() + 60)
        finally:
            squatter.shutdown()
            squatter.server_close()
            thread.join(timeout=10)
        pds.start_pds()
        assert httpx.get(f"{pds.url}/xrpc/_health", timeout=10).status_code == 200
    finally:
        pds.stop()


def test_free_ports_are_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(10_000 <= free_port() < low for _ in range(50))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_servers_die_with_a_killed_session(tmp_path: Path) -> None:
    """SIGKILL the process that started them: PLC and PDS exit on their own."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.support.pds import start_test_pds\n"
        "pds = start_test_pds(Path(sys.argv[1]))\n"
        "print(*pds.pids(), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "pds")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2, line
        assert not any(_gone(p) for p in pids)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    deadline = time.monotonic() + 20
    while not all(_gone(p) for p in pids):
        assert time.monotonic() < deadline, f"orphans left running: {pids}"
        time.sleep(0.1)
