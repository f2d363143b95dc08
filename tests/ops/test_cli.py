"""The operator's commands against a real database: --version, dead-letters, status."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import psycopg
import pytest

from coves import __version__, cli
from tests.ops.conftest import database_url
from tests.support.database import TestPostgres
from tests.support.events import POST, Stream, did, post_record

COMMUNITY = did("cli-community")
ALICE = did("cli-alice")


def _run(tmp_path: Path, *argv: str) -> int:
    empty = tmp_path / "empty.env"  # a developer's ./.env must not leak into the test
    empty.touch()
    return cli.main(["--env-file", str(empty), *argv])


@pytest.fixture
def env(
    pg: TestPostgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[TestPostgres, str]:
    name = pg.create_database()
    monkeypatch.setenv("DATABASE_URL", database_url(pg, name))
    monkeypatch.setenv("COVES_PORT", "9")  # nothing listens there: the server is "down"
    monkeypatch.setenv("LOG_LEVEL", "warning")
    yield pg, name
    pg.drop_database(name)


def _letters(pg: TestPostgres, name: str) -> dict[str, int]:
    """Three letters: bad JSON, a valid post refused earlier, an invalid record."""
    stream = Stream()
    valid = stream.commit(COMMUNITY, POST, "3kcli00000001", post_record(COMMUNITY, ALICE))
    invalid = stream.commit(COMMUNITY, POST, "3kcli00000002", {"title": 7})
    ids: dict[str, int] = {}
    with psycopg.connect(pg.conninfo(name), autocommit=True) as conn:
        for key, reason, raw, detail in (
            ("bad", "bad_json", '{"not json', "unexpected end of data"),
            ("valid", "apply_failed", orjson.dumps(valid).decode(), "refused by the database"),
            ("invalid", "invalid_record", orjson.dumps(invalid).decode(), "title: not a string"),
        ):
            row = conn.execute(
                "INSERT INTO dead_letters (reason, detail, did, collection, rkey, raw) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (reason, detail, COMMUNITY, POST, "3kcli", raw),
            ).fetchone()
            assert row is not None
            ids[key] = row[0]
    return ids


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"coves {__version__}"


def test_dead_letters_counts_list_and_show(
    env: tuple[TestPostgres, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg, name = env
    assert _run(tmp_path, "dead-letters") == 0
    assert "no dead letters" in capsys.readouterr().out
    ids = _letters(pg, name)

    assert _run(tmp_path, "dead-letters") == 0
    out = capsys.readouterr().out
    for reason in ("bad_json", "apply_failed", "invalid_record"):
        assert reason in out
    assert "the frame is not JSON" in out  # each reason is explained

    assert _run(tmp_path, "dead-letters", "list", "--reason", "invalid_record") == 0
    out = capsys.readouterr().out
    assert "invalid_record" in out and "bad_json" not in out
    assert "title: not a string" in out

    assert _run(tmp_path, "dead-letters", "list", "--limit", "2", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [ids["invalid"], ids["valid"]]  # newest first
    assert _run(tmp_path, "dead-letters", "list", "--limit", "2") == 0
    assert f"(more: --before {ids['valid']})" in capsys.readouterr().out
    assert _run(tmp_path, "dead-letters", "list", "--before", str(ids["valid"])) == 0
    out = capsys.readouterr().out
    assert "bad_json" in out and "apply_failed" not in out

    assert _run(tmp_path, "dead-letters", "show", str(ids["valid"])) == 0
    out = capsys.readouterr().out
    assert "reason:      apply_failed" in out
    assert '"collection": "social.coves.community.post"' in out  # raw, pretty-printed
    assert _run(tmp_path, "dead-letters", "show", str(ids["bad"])) == 0
    assert '{"not json' in capsys.readouterr().out  # kept as it came

    assert _run(tmp_path, "dead-letters", "show", "999999") == 1
    assert "no dead letter with id 999999" in capsys.readouterr().err


def test_dead_letters_retry(
    env: tuple[TestPostgres, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg, name = env
    ids = _letters(pg, name)
    assert _run(tmp_path, "dead-letters", "retry") == 2
    assert "name ids, --reason REASON or --all" in capsys.readouterr().err

    # The refused post applies now; the live cursor is not touched.
    assert _run(tmp_path, "dead-letters", "retry", str(ids["valid"])) == 0
    out = capsys.readouterr().out
    assert "applied:           1" in out
    with psycopg.connect(pg.conninfo(name)) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM ingest_cursor").fetchone() == (0,)
        remaining = {r[0] for r in conn.execute("SELECT reason FROM dead_letters")}
    assert remaining == {"bad_json", "invalid_record"}

    # Still broken: refused again under today's reason, the old letters replaced.
    assert _run(tmp_path, "dead-letters", "retry", "--all") == 0
    out = capsys.readouterr().out
    assert "dead-lettered again: 2" in out
    assert "bad_json: 1" in out and "invalid_record: 1" in out
    with psycopg.connect(pg.conninfo(name)) as conn:
        rows = conn.execute("SELECT id, reason FROM dead_letters ORDER BY id").fetchall()
    assert [r[1] for r in rows] == ["bad_json", "invalid_record"]
    assert all(r[0] > ids["invalid"] for r in rows)

    assert _run(tmp_path, "dead-letters", "retry", "424242") == 1
    assert "not found" in capsys.readouterr().err


def test_status_with_the_server_down_reads_the_database(
    env: tuple[TestPostgres, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg, name = env
    _letters(pg, name)
    with psycopg.connect(pg.conninfo(name), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest_cursor (name, time_us) VALUES ('jetstream', 1780000000000000), "
            "('firehose:pds.example', 4242)"
        )
        conn.execute(
            "INSERT INTO backups (started_at, finished_at, ok, file, size_bytes) "
            "VALUES (now() - interval '2 hours', now() - interval '2 hours', true, "
            "'/b/coves-x.dump', 2000000)"
        )
        conn.execute(
            "INSERT INTO backups (started_at, ok, error) VALUES (now(), false, 'disk full')"
        )
    assert _run(tmp_path, "status") == 1  # the server does not answer
    out = capsys.readouterr().out
    assert "NOT ANSWERING" in out
    assert "reachable via external" in out and "(up to date)" in out
    assert "cursor jetstream: 2026-05-28" in out
    assert "cursor firehose:pds.example: seq 4242 (moved" in out
    assert "dead letters: 3" in out
    assert "last good" in out and "2.0 h ago" in out and "/b/coves-x.dump" in out
    assert "last FAILED" in out and "disk full" in out
    assert out.strip().endswith("UNHEALTHY")

    assert _run(tmp_path, "status", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is False
    assert report["server"]["error"]
    assert report["database"]["deadLetters"]["byReason"] == {
        "bad_json": 1,
        "apply_failed": 1,
        "invalid_record": 1,
    }
    assert report["database"]["backups"]["lastFailureError"] == "disk full"


def test_status_with_the_database_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://coves@/coves?host=/nonexistent&port=5432")
    monkeypatch.setenv("COVES_PORT", "9")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert _run(tmp_path, "status") == 1
    assert "database:    UNREACHABLE" in capsys.readouterr().out
    assert _run(tmp_path, "dead-letters", "list") == 1
    assert "coves dead-letters:" in capsys.readouterr().err


def test_cache_clear(
    env: tuple[TestPostgres, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg, name = env
    with psycopg.connect(pg.conninfo(name), autocommit=True) as conn:
        for kind, key, did_value in (
            ("handle", "alice.example.com", "did:plc:alice"),
            ("did", "did:plc:alice", "did:plc:alice"),
            ("did", "did:plc:bob", "did:plc:bob"),
        ):
            conn.execute(
                "INSERT INTO identity_cache (kind, key, did, expires_at) "
                "VALUES (%s, %s, %s, now() + interval '1 day')",
                (kind, key, did_value),
            )
        conn.execute(
            "INSERT INTO listing_snapshots (id, key, items, taken_at, expires_at) "
            "VALUES ('s1', 'k', '{}', 0, now() + interval '1 hour')"
        )
    assert _run(tmp_path, "cache", "clear", "--identity", "@Alice.Example.com") == 0
    assert "identity cache: 1 entry dropped" in capsys.readouterr().out
    assert _run(tmp_path, "cache", "clear", "--identity", "did:plc:alice") == 0
    assert "1 entry dropped" in capsys.readouterr().out
    assert _run(tmp_path, "cache", "clear", "--feed-snapshots") == 0
    out = capsys.readouterr().out
    assert "identity cache: 1 entry dropped" in out and "feed snapshots: 1 dropped" in out
    with psycopg.connect(pg.conninfo(name)) as conn:
        assert conn.execute("SELECT count(*) FROM identity_cache").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM listing_snapshots").fetchone() == (0,)


def test_backup_units_verify(tmp_path: Path) -> None:
    """deploy/coves-backup.{service,timer} as systemd reads them, running a real command."""
    import shutil
    import subprocess
    import sys

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    coves = Path(sys.executable).parent / "coves"
    for unit in ("coves-backup.service", "coves-backup.timer"):
        text = (deploy / unit).read_text().replace("/opt/coves/.venv/bin/coves", str(coves))
        (tmp_path / unit).write_text(text)
    assert (
        "ExecStart=/opt/coves/.venv/bin/coves backup\n"
        in (deploy / "coves-backup.service").read_text()
    )
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) verifies the units"
    result = subprocess.run(
        [analyze, "verify", "--man=no", "coves-backup.service", "coves-backup.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    calendar = subprocess.run(
        [analyze, "calendar", "*-*-* 03:17:00"], capture_output=True, text=True, check=False
    )
    assert "Next elapse" in calendar.stdout
    # The command the unit runs exists and takes no argument it does not know.
    help_text = subprocess.run(
        [str(coves), "backup", "--help"], capture_output=True, text=True, check=False
    )
    assert help_text.returncode == 0 and "--to" in help_text.stdout


def _reports(pg: TestPostgres, name: str) -> list[int]:
    """Three reports, oldest first: a post (spam), a comment (harassment), an account."""
    ids = []
    with psycopg.connect(pg.conninfo(name), autocommit=True) as conn:
        for age, kind, reason in (
            (3, "post", "spam"),
            (2, "comment", "harassment"),
            (1, "account", "other"),
        ):
            row = conn.execute(
                "INSERT INTO admin_reports (reporter_did, target_uri, target_type, target_did, "
                "reason, explanation, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, now() - make_interval(mins => %s)) RETURNING id",
                (ALICE, f"at://{COMMUNITY}/x/{kind}", kind, COMMUNITY, reason, f"a {kind}", age),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return ids


def test_reports_lists_and_settles_reports(
    env: tuple[TestPostgres, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg, name = env
    assert _run(tmp_path, "reports") == 0
    assert capsys.readouterr().out == ""  # nothing reported yet
    post, comment, account = _reports(pg, name)

    def listed(*argv: str) -> list[dict[str, object]]:
        assert _run(tmp_path, "reports", *argv) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    rows = listed()
    assert [r["id"] for r in rows] == [account, comment, post]  # newest first
    assert rows[2]["reason"] == "spam" and rows[2]["explanation"] == "a post"
    assert rows[2]["status"] == "open" and str(rows[2]["created_at"]).startswith("20")
    assert [r["id"] for r in listed("--limit", "1")] == [account]

    assert _run(tmp_path, "reports", "--set", str(comment), "reviewing") == 0
    assert capsys.readouterr().out.strip() == f"report {comment}: reviewing"
    assert _run(tmp_path, "reports", "--set", str(post), "dismissed") == 0
    capsys.readouterr()
    assert [r["id"] for r in listed()] == [account]
    assert [r["id"] for r in listed("--status", "reviewing")] == [comment]
    assert [r["id"] for r in listed("--status", "dismissed")] == [post]
    assert [r["id"] for r in listed("--status", "all")] == [account, comment, post]
    assert _run(tmp_path, "reports", "--set", str(comment), "open") == 0  # back again
    capsys.readouterr()
    assert [r["id"] for r in listed()] == [account, comment]

    assert _run(tmp_path, "reports", "--set", "999999", "resolved") == 1
    assert "no report 999999" in capsys.readouterr().err
    for bad in (("x1", "resolved"), (str(post), "closed")):
        assert _run(tmp_path, "reports", "--set", *bad) == 2
        assert "--set ID STATUS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses an unknown filter
        _run(tmp_path, "reports", "--status", "closed")
    assert exit_info.value.code == 2
    assert [r["status"] for r in listed("--status", "all")] == ["open", "open", "dismissed"]
