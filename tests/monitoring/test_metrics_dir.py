"""Where a multi-process deployment keeps its metric files, and who removes them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coves.metrics import make_multiprocess_dir


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_directory_lives_under_the_data_dir_and_names_its_owner(tmp_path: Path) -> None:
    made = Path(make_multiprocess_dir(tmp_path))
    assert made.parent == tmp_path / "metrics"
    assert made.name.startswith(f"{os.getpid()}-")
    assert made.is_dir()


def test_a_killed_runs_files_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    base = tmp_path / "metrics"
    dead = base / f"{_dead_pid()}-abc"
    dead.mkdir(parents=True)
    (dead / "counter_1.db").write_bytes(b"x")
    live = base / f"{os.getppid()}-def"
    live.mkdir()
    stranger = base / "notes"
    stranger.mkdir()

    made = Path(make_multiprocess_dir(tmp_path))

    assert not dead.exists()
    assert live.is_dir()
    assert stranger.is_dir()
    assert made.is_dir() and made != live
