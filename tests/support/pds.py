"""Bluesky's reference PDS and a PLC directory, running on loopback for the tests.

Anything in Coves that talks to a PDS is tested against the real thing:
``@atproto/pds`` with ``@did-plc/server`` (an in-memory PLC), pinned in
``tests/pds/package-lock.json`` and installed by ``scripts/install-test-pds``
(which ``scripts/bootstrap`` runs). Both run as child processes of the test
session (the ``pds`` fixture in ``tests/conftest.py`` starts them once, on first
use, and stops them at the end).

Why the configuration is what it is:

- ``PDS_HOSTNAME=localhost`` with ``PDS_DEV_MODE=true``: the PDS's public URL is
  then ``http://localhost:<port>``, which is the only way its OAuth authorization
  server and protected-resource metadata accept plain http (tests drive the real
  OAuth flow against it), and dev mode turns off its SSRF guard so it may fetch
  loopback URLs (PLC, client metadata served by a test Coves).
- ``PDS_SERVICE_HANDLE_DOMAINS=.coves.test``: the instance domain the tests give
  Coves, so community handles ``c-{name}.coves.test`` are user domains the PDS
  accepts (it allows 3–18 characters before the domain).
- Invites required, as on a production instance PDS: the harness mints codes
  with the admin password, and so does Coves' provisioning.
- Rate limits off (the PDS's default without ``PDS_RATE_LIMITS_ENABLED``).

No orphans: each server exits when its standard input closes (``run.mjs``). The
write end of that pipe lives only in this process, so if the test session dies
in any way, even by SIGKILL, the kernel closes it and the servers stop. Logs go to
files under the session's directory; ``tests/conftest.py`` attaches what a failed
test made them write to its report.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

PDS_DIR = Path(__file__).resolve().parent.parent / "pds"
NODE = PDS_DIR / "node_modules" / ".bin" / "node"
LAUNCHER = PDS_DIR / "run.mjs"
HANDLE_DOMAIN = "coves.test"
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 10.0


class PdsHarnessError(RuntimeError):
    """The reference PDS or PLC could not be started (the message carries its log)."""


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    The PDS keeps its port for the whole session (its DID documents name it),
    and a restart leaves it unbound for a moment: any ``bind(0)`` on the
    machine (other tests, other test runs) could be handed it from the
    ephemeral range then. Ports below that range are never handed out that way."""
    low = _ephemeral_low()
    for _ in range(200):
        port = secrets.randbelow(low - 10_000) + 10_000
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise PdsHarnessError(f"no free port between 10000 and {low}")


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return low if low > 11_000 else 32768


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class _Server:
    """One node child: its command environment, log file and process."""

    kind: str
    env: dict[str, str]
    log_path: Path
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    _log_start: int = 0

    def spawn(self) -> None:
        if not NODE.exists():
            raise PdsHarnessError(
                f"{NODE} is missing: run ./scripts/install-test-pds (scripts/bootstrap does)"
            )
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        self.process = subprocess.Popen(
            [str(NODE), str(LAUNCHER), self.kind],
            cwd=PDS_DIR,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches pytest, which stops us
        )

    def wait_ready(self, deadline: float) -> None:
        """Until this process says it listens and the port answers: a health check
        alone would also accept whatever else answers on the port (the port of a
        PDS being restarted is free for a moment)."""
        assert self.process is not None
        marker = f"coves-test-{self.kind}: listening on 127.0.0.1 (pid {self.process.pid})"
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise PdsHarnessError(
                        f"{self.kind} exited with {code} while starting:\n{_tail(self.log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if self._logged(marker) and client.get(self.health_url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise PdsHarnessError(
                        f"{self.kind} not healthy within {START_TIMEOUT_SECONDS:.0f} s:\n"
                        f"{_tail(self.log_path)}"
                    )
                time.sleep(0.1)

    def _logged(self, line: str) -> bool:
        """Whether this process wrote ``line`` to its log (since it was spawned)."""
        with self.log_path.open("rb") as f:
            f.seek(self._log_start)
            return line.encode() in f.read()

    def stop(self, *, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            if kill:
                process.kill()
            else:
                # Closing stdin is the launcher's stop signal; SIGTERM too.
                with contextlib.suppress(OSError):
                    if process.stdin is not None:
                        process.stdin.close()
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class PdsAccount:
    """An account created on the test PDS, with the session it got."""

    did: str
    handle: str
    email: str
    password: str
    access_jwt: str
    refresh_jwt: str


@dataclass
class TestPds:
    """The running reference PDS and PLC directory, with helpers for tests.

    ``url`` is the PDS's public URL (``http://localhost:<port>``: its DID
    documents, OAuth issuer and token audiences all use it).
    """

    __test__ = False

    root: Path
    port: int
    plc_port: int
    admin_password: str
    handle_domain: str = HANDLE_DOMAIN
    _plc: _Server | None = None
    _pds: _Server | None = None
    _counter: int = field(default=0)
    start_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def plc_url(self) -> str:
        # A host name, not an IP literal: the PDS's fetcher refuses IP literals.
        return f"http://localhost:{self.plc_port}"

    @property
    def pds_log(self) -> Path:
        return self.root / "pds.log"

    @property
    def plc_log(self) -> Path:
        return self.root / "plc.log"

    @property
    def running(self) -> bool:
        return bool(self._pds and self._pds.process and self._pds.process.poll() is None)

    def pds_env(self) -> dict[str, str]:
        data = self.root / "pds-data"
        data.mkdir(exist_ok=True)
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        return {
            **base,
            "NODE_ENV": "development",
            "LOG_ENABLED": "true",
            "LOG_LEVEL": "info",
            "PDS_PORT": str(self.port),
            "PDS_HOSTNAME": "localhost",
            "PDS_DEV_MODE": "true",
            "PDS_DATA_DIRECTORY": str(data),
            "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blobs"),
            "PDS_DID_PLC_URL": self.plc_url,
            "PDS_SERVICE_HANDLE_DOMAINS": "." + self.handle_domain,
            "PDS_INVITE_REQUIRED": "true",
            # As docs/operations.md tells operators: the 10 MB images posts may carry.
            "PDS_BLOB_UPLOAD_LIMIT": "10000000",
            "PDS_ADMIN_PASSWORD": self.admin_password,
            "PDS_JWT_SECRET": self._secret("jwt"),
            "PDS_DPOP_SECRET": self._secret("dpop"),
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": self._secret("rotation"),
        }

    def _secret(self, name: str) -> str:
        # Stable across restarts of the PDS (same data directory, same keys).
        path = self.root / f"{name}.secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip()

    # ---- lifecycle ------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        deadline = began + START_TIMEOUT_SECONDS
        if self._plc is None:
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
            env["PLC_PORT"] = str(self.plc_port)
            health = f"http://127.0.0.1:{self.plc_port}/_health"
            self._plc = _Server("plc", env, self.plc_log, health)
            self._plc.spawn()
            self._plc.wait_ready(deadline)
        self.start_pds(deadline=deadline)
        self.start_seconds = time.monotonic() - began

    def start_pds(self, *, deadline: float | None = None) -> None:
        """Start the PDS (again): same port, data directory and keys."""
        if self.running:
            return
        deadline = deadline if deadline is not None else time.monotonic() + START_TIMEOUT_SECONDS
        health = f"http://127.0.0.1:{self.port}/xrpc/_health"
        self._pds = _Server("pds", self.pds_env(), self.pds_log, health)
        self._pds.spawn()
        try:
            self._pds.wait_ready(deadline)
        except BaseException:
            self._pds.stop(kill=True)  # its pipe and log, even when it has exited
            raise

    def stop_pds(self, *, kill: bool = False) -> None:
        """Stop only the PDS (``kill=True``: SIGKILL, as a crash would)."""
        if self._pds is not None:
            self._pds.stop(kill=kill)

    def restart_pds(self, *, kill: bool = False) -> None:
        self.stop_pds(kill=kill)
        self.start_pds()

    def stop(self) -> None:
        self.stop_pds()
        if self._plc is not None:
            self._plc.stop()

    def pids(self) -> list[int]:
        return [
            s.process.pid
            for s in (self._plc, self._pds)
            if s is not None and s.process is not None and s.process.poll() is None
        ]

    # ---- helpers for tests ------------------------------------------------

    def unique_name(self, prefix: str = "u") -> str:
        """A short handle label unique within this session (3–18 chars, as the PDS wants)."""
        self._counter += 1
        return f"{prefix}{os.getpid() % 10000}x{self._counter}{secrets.token_hex(2)}"[:18]

    def admin_auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth("admin", self.admin_password)

    async def xrpc(
        self,
        method: str,
        nsid: str,
        *,
        token: str | None = None,
        admin: bool = False,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One raw XRPC call to the PDS (no error mapping: tests look at the response)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(timeout=20.0) as client:
            return await client.request(
                method,
                f"{self.url}/xrpc/{nsid}",
                params=params,
                json=json,
                content=content,
                headers=hdrs,
                auth=self.admin_auth() if admin else httpx.USE_CLIENT_DEFAULT,
            )

    async def create_invite_code(self, uses: int = 1) -> str:
        resp = await self.xrpc(
            "POST", "com.atproto.server.createInviteCode", admin=True, json={"useCount": uses}
        )
        resp.raise_for_status()
        return str(resp.json()["code"])

    async def create_account(
        self, name: str | None = None, *, password: str | None = None
    ) -> PdsAccount:
        """A new account with handle ``{name}.{handle_domain}`` (a unique name by default)."""
        name = name or self.unique_name()
        handle = f"{name}.{self.handle_domain}"
        email = f"{name}@{self.handle_domain}"
        password = password or secrets.token_urlsafe(24)
        resp = await self.xrpc(
            "POST",
            "com.atproto.server.createAccount",
            json={
                "handle": handle,
                "email": email,
                "password": password,
                "inviteCode": await self.create_invite_code(),
            },
        )
        if resp.status_code != 200:
            raise PdsHarnessError(f"createAccount {handle}: {resp.status_code} {resp.text}")
        body = resp.json()
        return PdsAccount(
            did=body["did"],
            handle=body["handle"],
            email=email,
            password=password,
            access_jwt=body["accessJwt"],
            refresh_jwt=body["refreshJwt"],
        )

    async def resolve_did(self, did: str) -> dict[str, Any]:
        """The DID document as the PLC directory serves it."""
        async with httpx.AsyncClient(timeout=10.0) as client:
            resp = await client.get(f"{self.plc_url}/{did}")
        resp.raise_for_status()
        doc: dict[str, Any] = resp.json()
        return doc


def start_test_pds(root: Path) -> TestPds:
    """Start PLC + PDS on free loopback ports under ``root``; raises PdsHarnessError."""
    root.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probe and bind
        pds = TestPds(
            root=root,
            port=free_port(),
            plc_port=free_port(),
            admin_password=secrets.token_urlsafe(18),
        )
        try:
            pds.start()
        except PdsHarnessError as exc:
            pds.stop()
            last = exc
            if "EADDRINUSE" not in str(exc):
                raise
            continue
        return pds
    assert last is not None
    raise last
