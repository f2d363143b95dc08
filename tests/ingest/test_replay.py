"""``coves replay``: captured streams (plain or zstd) through the same indexer."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import trio
import zstandard

from coves import cli
from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.ingest.replay import (
    REPLAY_SWITCH_INTERVAL_SECONDS,
    Progress,
    open_stream,
    read_batches,
    replay,
)
from coves.ingest.types import Frame
from tests.ingest.helpers import value
from tests.support.database import TestPostgres
from tests.support.events import (
    POST,
    VOTE,
    Stream,
    did,
    post_record,
    uri,
    vote_record,
)

COMMUNITY = did("community")
ALICE = did("alice")


def empty_env(tmp_path: Path) -> str:
    """An empty --env-file, so a developer's ./.env cannot leak into the test."""
    path = tmp_path / "empty.env"
    path.touch()
    return str(path)


def _events(stream: Stream) -> list[dict[str, Any]]:
    post = uri(COMMUNITY, POST, "3kpost0000001")
    return [
        stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
        *(
            stream.commit(did(f"voter{i}"), VOTE, "3kvote0000001", vote_record(post))
            for i in range(4)
        ),
    ]


def _write(path: Path, lines: list[bytes], *, compress: bool) -> Path:
    body = b"\n".join(lines) + b"\n\n"
    path.write_bytes(zstandard.ZstdCompressor().compress(body) if compress else body)
    return path


@pytest.mark.parametrize(
    ("name", "compress"),
    [("plain.jsonl", False), ("stream.jsonl.zst", True), ("magic-only.jsonl", True)],
)
async def test_replay_applies_file_in_batches(
    db: Database, indexer: Indexer, stream: Stream, tmp_path: Path, name: str, compress: bool
) -> None:
    events = _events(stream)
    lines = [orjson.dumps(e) for e in events] + [b"not json"]
    path = _write(tmp_path / name, lines, compress=compress)
    out = io.StringIO()
    with trio.fail_after(20):
        summary = await replay(indexer, path, batch_size=2, progress=Progress(out, interval=0))
    assert summary.events == 6 and summary.applied == 5 and summary.dead_lettered == 1
    assert summary.reasons == {"bad_json": 1}
    assert await value(db, "SELECT upvote_count FROM posts") == 4
    # The live consumer's cursor is not the file's: a replay leaves it alone.
    assert await indexer.load_cursor() is None
    assert "6 events" in out.getvalue() and "events/s" in out.getvalue()
    assert "[########################] 100%" in out.getvalue()
    # Replaying the same file again changes nothing.
    with trio.fail_after(20):
        again = await replay(indexer, path, batch_size=4)
    assert again.applied == 0 and again.skipped == 5
    assert await value(db, "SELECT upvote_count FROM posts") == 4


def test_read_batches_splits_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", [b"{}", b"", b"{}", b"{}"], compress=False)
    with open_stream(path) as handle:
        sizes = [len(b) for b in read_batches(handle, 2)]
    assert sizes == [2, 1]


def test_replay_command_end_to_end(
    pg: TestPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = _events(Stream())
    path = _write(tmp_path / "cap.jsonl.zst", [orjson.dumps(e) for e in events], compress=True)
    name = pg.create_database()
    try:
        info = dict(part.split("=", 1) for part in pg.conninfo(name).split())
        url = (
            f"postgresql://{info['user']}@/{info['dbname']}?host={info['host']}&port={info['port']}"
        )
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("COVES_ENV", "development")
        monkeypatch.setenv("SKIP_DID_WEB_VERIFICATION", "false")
        code = cli.main(
            ["--env-file", empty_env(tmp_path), "replay", str(path), "--batch-size", "2"]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "events:        5" in captured.out
        assert "applied:       5" in captured.out
        assert "events/s" in captured.out
        import psycopg

        with psycopg.connect(pg.conninfo(name)) as conn:
            row = conn.execute("SELECT upvote_count FROM posts").fetchone()
            assert row == (4,)
    finally:
        pg.drop_database(name)


def test_replay_command_refuses_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--env-file", empty_env(tmp_path), "replay", str(tmp_path / "nope")])
    assert code == 2
    assert "no such file" in capsys.readouterr().err


def test_replay_command_reports_a_corrupt_stream(
    pg: TestPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "broken.jsonl"  # detected by the magic number alone
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 10)
    name = pg.create_database()
    try:
        info = dict(part.split("=", 1) for part in pg.conninfo(name).split())
        url = (
            f"postgresql://{info['user']}@/{info['dbname']}?host={info['host']}&port={info['port']}"
        )
        monkeypatch.setenv("DATABASE_URL", url)
        code = cli.main(["--env-file", empty_env(tmp_path), "replay", str(path)])
        assert code == 1
        assert "cannot read the stream" in capsys.readouterr().err
    finally:
        pg.drop_database(name)


class _IntervalProbe(Progress):
    """Records the GIL switch interval seen while the replay runs."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), interval=0)
        self.seen: list[float] = []

    def update(
        self, events: int, elapsed: float, *, fraction: float | None = None, final: bool = False
    ) -> None:
        self.seen.append(sys.getswitchinterval())


async def test_replay_shortens_switch_interval_only_while_it_runs(
    indexer: Indexer, stream: Stream, tmp_path: Path
) -> None:
    lines = [orjson.dumps(e) for e in _events(stream)]
    path = _write(tmp_path / "s.jsonl", lines, compress=False)
    before = sys.getswitchinterval()
    assert before != REPLAY_SWITCH_INTERVAL_SECONDS
    probe = _IntervalProbe()
    with trio.fail_after(20):
        await replay(indexer, path, batch_size=2, progress=probe)
    assert probe.seen and set(probe.seen) == {REPLAY_SWITCH_INTERVAL_SECONDS}
    assert sys.getswitchinterval() == before

    # Restored when the replay fails too (a stream that is not valid zstd).
    broken = _write(tmp_path / "broken.jsonl.zst", [b"x"], compress=False)
    with trio.fail_after(20), pytest.raises(zstandard.ZstdError):
        await replay(indexer, broken, batch_size=2)
    assert sys.getswitchinterval() == before


async def test_a_read_error_while_parsing_ahead_keeps_the_batch_before_it(
    db: Database, indexer: Indexer, stream: Stream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch is read and parsed inside the current batch's database call
    (see replay._Upcoming); a failure there must not undo the current batch."""
    import coves.ingest.replay as replay_module

    events = _events(stream)
    path = _write(tmp_path / "s.jsonl", [orjson.dumps(e) for e in events], compress=False)
    real = replay_module.read_batches

    def failing(source: Any, batch_size: int) -> Any:
        batches = real(source, batch_size)
        yield next(batches)
        raise OSError("disk gone")

    monkeypatch.setattr(replay_module, "read_batches", failing)
    with trio.fail_after(20), pytest.raises(OSError, match="disk gone"):
        await replay(indexer, path, batch_size=2)
    assert await value(db, "SELECT count(*) FROM posts") == 1
    assert await value(db, "SELECT count(*) FROM votes") == 1


async def test_meanwhile_runs_once_the_batch_is_sent_and_the_batch_commits(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    events = _events(stream)
    batch = indexer.prepare([Frame(orjson.dumps(e), 0.0) for e in events])
    seen: list[int] = []

    def meanwhile() -> None:
        # In the database thread, before the batch's transaction commits: another
        # connection sees none of it yet.
        with psycopg.connect(db.conninfo) as other:
            seen.append(other.execute("SELECT count(*) FROM posts").fetchone()[0])  # type: ignore[index]

    result = await indexer.commit(batch, meanwhile=meanwhile)
    assert seen == [0]
    assert result.applied == len(events)
    assert await value(db, "SELECT upvote_count FROM posts") == 4
