"""``scripts/demo --check``: the newcomer's instance comes up, seeded, and can be used.

The real command as a newcomer runs it (minus the bootstrap): PLC and the reference PDS,
``coves serve`` reading the PDS's firehose, the seeding, the wait for indexing, then the
checks in demo/check.py (communities, pictures that serve, link cards, threads, votes,
profiles, signing in through the PDS's page and commenting through Coves).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.foundation.test_process import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_comes_up_seeded_and_usable(scratch: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo",
            "--check",
            "--dir",
            str(scratch / "demo"),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = scratch / "demo" / "coves.log"
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no coves.log)"
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + tail
    out = result.stdout
    assert "check: everything a newcomer should see is there" in out
    assert "c-gardening.coves.test" in out and "demo-password" in out
    assert (
        "/oauth/mobile/login?handle=did%3Aplc" in out or "/oauth/mobile/login?handle=did:plc" in out
    )
