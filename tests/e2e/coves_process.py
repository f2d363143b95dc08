"""The real ``coves serve`` as a child process the test can stop gently or kill."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import trio

from tests.support.process import COVES, coves_env, free_port, wait_healthy


class CovesProcess:
    def __init__(self, server_dir: Path, **env: str) -> None:
        self.server_dir = server_dir
        self.env = env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = server_dir / "coves.log"
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [*COVES, "serve", "--port", str(self.port)],
                env=coves_env(self.server_dir, **self.env),
                cwd=self.server_dir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        proc = self.proc
        try:
            await trio.to_thread.run_sync(wait_healthy, f"{self.base}/xrpc/_health", proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.log()[-4000:]}") from None

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the clean shutdown an operator's restart does."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self._wait(timeout)

    async def kill(self) -> int:
        """kill -9: nothing gets to clean up."""
        assert self.proc is not None
        self.proc.kill()
        return await self._wait(10.0)

    async def _wait(self, timeout: float) -> int:
        proc, self.proc = self.proc, None
        assert proc is not None
        code: int = await trio.to_thread.run_sync(lambda: proc.wait(timeout))
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class _Headers:
    def __init__(self, headers: httpx.Headers) -> None:
        self._headers = headers

    def getlist(self, name: str) -> list[str]:
        return self._headers.get_list(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._headers[name]


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = _Headers(response.headers)
        self._content = response.content

    async def get_data(self) -> bytes:
        return self._content


class HttpCoves:
    """The scripted browser's view of Coves (tests/support/oauth_browser.py expects a
    Quart test client) over real HTTP to a running ``coves serve``."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def get(self, path: str, headers: dict[str, str] | None = None) -> _Response:
        async with httpx.AsyncClient(base_url=self.base, timeout=20.0) as client:
            return _Response(await client.get(path, headers=headers, follow_redirects=False))
