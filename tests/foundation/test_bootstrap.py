"""scripts/serve installs only Coves; scripts/test installs everything the tests run.

The real scripts run in a copy of the tree whose ``.venv/bin`` programs and
installers are stand-ins that record how they were called: serving must not wait on
npm (the reference PDS) or apt-get (Prometheus), and the tests must still get both.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDER = '#!/bin/sh\necho "{name} $*" >> "$(dirname "$0")/{up}calls.log"\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    for name in ("bootstrap", "serve", "test"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    stand_ins = {
        "scripts/install-test-pds": "../",
        "scripts/setup-prometheus": "../",
        ".venv/bin/python": "../../",
        ".venv/bin/coves": "../../",
    }
    for relative, up in stand_ins.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RECORDER.format(name=path.name, up=up))
        path.chmod(0o755)
    return tmp_path


def run(tree: Path, *argv: str) -> list[str]:
    subprocess.run([str(tree / argv[0]), *argv[1:]], check=True, timeout=30, cwd="/")
    return (tree / "calls.log").read_text().splitlines()


def test_serve_installs_coves_alone(tree: Path) -> None:
    calls = run(tree, "scripts/serve", "--port", "9")
    assert calls == ["python -m pip install -q -e .", "coves serve --port 9"]


def test_test_installs_the_dev_tools_the_pds_and_prometheus(tree: Path) -> None:
    calls = run(tree, "scripts/test", "-q")
    assert calls == [
        "python -m pip install -q -e .[dev]",
        "install-test-pds ",
        "setup-prometheus ",
        "python -m pytest -q",
    ]


def test_an_unknown_bootstrap_option_is_refused(tree: Path) -> None:
    done = subprocess.run(
        [str(tree / "scripts/bootstrap"), "--tests"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "usage" in done.stderr
    assert not (tree / "calls.log").exists()
