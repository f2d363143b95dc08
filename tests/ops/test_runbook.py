"""docs/operations.md holds only procedures the repository exercises.

Every test file it cites exists, every command it tells an operator to run
is a real subcommand, every alert's runbook link lands on a section, and the
key-rotation procedures that no other test covers are shown to work here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coves import cli
from coves.atproto.keys import PrivateKey
from coves.config import test_settings
from coves.cursors import CursorCodec
from coves.db import Database
from coves.errors import XRPCError
from coves.instance import InstanceKey, instance_did_document
from coves.secrets import Secret

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "operations.md").read_text()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_cited_test_exists() -> None:
    cited = set(re.findall(r"`(tests/[\w/.*-]+)`", DOC))
    assert len(cited) > 20
    for path in sorted(cited):
        matches = list(ROOT.glob(path)) if "*" in path else [ROOT / path]
        assert matches and all(p.exists() for p in matches), path


def test_every_procedure_says_what_exercises_it() -> None:
    sections = re.split(r"\n(?=##+ )", DOC)
    procedures = [
        s
        for s in sections
        if s.startswith(("## ", "### "))
        and not s.startswith(
            (
                "## Incident response",
                "## Production checklist",
                "## Runbook",
                "### Pre-deployment",
            )
        )
    ]
    missing = [s.splitlines()[0] for s in procedures if "*Tested by*" not in s]
    assert missing == [], missing


def test_commands_in_the_runbook_exist() -> None:
    cli._load_extra_commands()
    parser = cli._parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    # "`coves refuses to start: ...`" quotes a message, not a command.
    named = set(re.findall(r"`coves ([a-z][a-z-]+)", DOC)) - {"refuses"}
    assert named <= subcommands, named - subcommands


def test_alert_runbook_links_land_on_a_section() -> None:
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", DOC, re.M)}
    rules = (ROOT / "deploy" / "prometheus" / "coves-alerts.yml").read_text()
    links = set(re.findall(r"docs/operations\.md#([\w-]+)", rules))
    assert links and links <= anchors, links - anchors
    in_doc = set(re.findall(r"\]\(#([\w-]+)\)", DOC))
    assert in_doc <= anchors, in_doc - anchors


async def test_a_new_instance_signing_key_is_published_at_once() -> None:
    """Key compromise: the did:web document shows the configured key, the new one
    as soon as it is configured (no database involved when it is set)."""
    db = Database("host=/nonexistent dbname=none", pool_size=1)
    old, new = PrivateKey.generate("k256"), PrivateKey.generate("k256")

    async def published(key: PrivateKey) -> str:
        settings = test_settings(
            instance_did="did:web:coves.example", instance_signing_key=Secret(key.to_hex())
        )
        document = await instance_did_document(settings, InstanceKey(settings, db))
        assert document is not None
        [method] = document["verificationMethod"]
        return str(method["publicKeyMultibase"])

    assert await published(old) == old.public().multikey()
    assert await published(new) == new.public().multikey() != old.public().multikey()


def test_a_new_cursor_secret_invalidates_open_cursors() -> None:
    before = CursorCodec(Secret("old-secret")).encode("feed", {"offset": 20})
    assert CursorCodec(Secret("old-secret")).decode("feed", before) == {"offset": 20}
    with pytest.raises(XRPCError) as refused:
        CursorCodec(Secret("new-secret")).decode("feed", before)
    assert refused.value.status == 400
