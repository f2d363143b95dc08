"""Firehose frames → Jetstream-shaped events: the data model, skipping, bad frames."""

from __future__ import annotations

import cbrrr
import pytest

from coves.atproto import mst
from coves.atproto.car import CarError, read_car, write_car
from coves.ingest.firehose import decode_frame, time_us
from tests.support.events import POST, VOTE, did
from tests.support.fake_repo import FakeRepo, Write, commit_body, encode_frame, error_frame

ALICE = did("alice")
BLOB = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
LINK = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
T0 = 1_780_000_000_000_000


def _frame(repo: FakeRepo, *writes: Write, seq: int = 7, **kw: object) -> bytes:
    commit = repo.commit(list(writes))
    return encode_frame("#commit", commit_body(commit, seq, T0, **kw))  # type: ignore[arg-type]


def test_records_come_out_in_the_atproto_json_data_model() -> None:
    """CID links and bytes stay distinguishable: {"$link"} and {"$bytes"}, blob refs intact."""
    record = {
        "community": did("c"),
        "author": ALICE,
        "title": "t",
        "createdAt": "2026-01-02T03:04:05.000Z",
        "embed": {
            "$type": "social.coves.embed.images",
            "images": [
                {
                    "image": {
                        "$type": "blob",
                        "ref": {"$link": BLOB},
                        "mimeType": "image/png",
                        "size": 1234,
                    },
                    "alt": "a",
                }
            ],
        },
        "opaque": {"$bytes": "AQI"},
        "strong": {"uri": "at://x/y/z", "cid": LINK},
        "linked": {"$link": LINK},
    }
    repo = FakeRepo(ALICE)
    decoded = decode_frame(_frame(repo, Write("create", POST, "3kpost0000001", record)))
    assert decoded.kind == "commit" and decoded.seq == 7 and decoded.dead == []
    [message] = decoded.messages
    assert message["did"] == ALICE and message["kind"] == "commit"
    assert message["time_us"] == T0
    commit = message["commit"]
    assert commit["operation"] == "create" and commit["collection"] == POST
    assert commit["rkey"] == "3kpost0000001" and commit["rev"] == repo.rev
    assert commit["cid"].startswith("bafyrei")
    out = commit["record"]
    assert out["embed"]["images"][0]["image"]["ref"] == {"$link": BLOB}
    assert out["opaque"] == {"$bytes": "AQI"}
    assert out["linked"] == {"$link": LINK}
    assert out["strong"]["cid"] == LINK  # a string stays a string
    assert out["$type"] == POST


def test_other_collections_are_skipped_without_reading_the_car() -> None:
    repo = FakeRepo(ALICE)
    frame = _frame(repo, Write("create", "app.bsky.feed.like", "3k1", {"subject": "x"}))
    decoded = decode_frame(frame)
    assert decoded.kind == "commit" and decoded.seq == 7
    assert decoded.messages == [] and decoded.car is None and decoded.dead == []


def test_a_mixed_commit_yields_only_our_operations_deletes_included() -> None:
    repo = FakeRepo(ALICE)
    repo.commit([Write("create", VOTE, "3kvote0000001", {"direction": "up"})])
    frame = _frame(
        repo,
        Write("create", "app.bsky.feed.post", "3k1", {"text": "hi"}),
        Write("delete", VOTE, "3kvote0000001"),
        Write("update", POST, "3kpost0000001", {"title": "x"}),
    )
    decoded = decode_frame(frame)
    kinds = [(m["commit"]["operation"], m["commit"]["collection"]) for m in decoded.messages]
    assert kinds == [("delete", VOTE), ("update", POST)]
    assert "record" not in decoded.messages[0]["commit"]


def test_identity_account_sync_info_and_error_frames() -> None:
    identity = decode_frame(
        encode_frame(
            "#identity",
            {"seq": 3, "did": ALICE, "time": "2026-01-02T03:04:05.123Z", "handle": "alice.test"},
        )
    )
    assert identity.kind == "identity" and identity.seq == 3
    assert identity.messages[0]["identity"]["handle"] == "alice.test"
    assert identity.messages[0]["time_us"] == time_us("2026-01-02T03:04:05.123Z")
    account = decode_frame(
        encode_frame(
            "#account",
            {
                "seq": 4,
                "did": ALICE,
                "time": "2026-01-02T03:04:05Z",
                "active": False,
                "status": "deactivated",
            },
        )
    )
    assert account.messages[0]["account"] == {
        "did": ALICE,
        "seq": 4,
        "time": "2026-01-02T03:04:05Z",
        "active": False,
        "status": "deactivated",
    }
    sync = decode_frame(
        encode_frame(
            "#sync",
            {"seq": 5, "did": ALICE, "time": "2026-01-02T03:04:05Z", "rev": "3kabc", "blocks": b""},
        )
    )
    assert (sync.kind, sync.seq, sync.rev, sync.messages) == ("sync", 5, "3kabc", [])
    info = decode_frame(encode_frame("#info", {"name": "OutdatedCursor", "message": "old"}))
    assert (info.kind, info.name, info.seq) == ("info", "OutdatedCursor", None)
    error = decode_frame(error_frame("FutureCursor", "ahead"))
    assert (error.kind, error.name, error.message) == ("error", "FutureCursor", "ahead")
    other = decode_frame(
        encode_frame("#handle", {"seq": 9, "did": ALICE, "time": "2026-01-02T03:04:05Z"})
    )
    assert (other.kind, other.seq, other.messages) == ("unknown", 9, [])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xff",
        cbrrr.encode_dag_cbor({"op": 1, "t": "#commit"}),  # header only
        cbrrr.encode_dag_cbor({"op": 1, "t": "#commit"}) + cbrrr.encode_dag_cbor([1]),
        cbrrr.encode_dag_cbor({"op": 1, "t": "#commit"}) + cbrrr.encode_dag_cbor({"seq": "x"}),
        cbrrr.encode_dag_cbor({"op": 2}) + cbrrr.encode_dag_cbor({}),
        encode_frame("#identity", {"seq": 1, "did": ALICE, "time": "yesterday"}),
        encode_frame("#commit", {"seq": 1}) + b"\x00",
    ],
)
def test_malformed_frames_are_dead_lettered_not_raised(data: bytes) -> None:
    decoded = decode_frame(data)
    assert decoded.kind == "malformed" and decoded.messages == []
    [letter] = decoded.dead
    assert letter.reason == "bad_envelope" and letter.raw.startswith("cbor-base64:")


def _post_commit_frame() -> bytes:
    built = FakeRepo(ALICE).commit([Write("create", POST, "3kpost", {"text": "hi"})])
    return encode_frame("#commit", commit_body(built, 7, 1_780_000_000_000_000))


def test_non_canonical_dag_cbor_is_refused() -> None:
    """Map keys out of canonical order are not DAG-CBOR (a strict decoder refuses them):
    a commit whose header puts "op" before "t" (shorter keys sort first) is refused,
    although its body is a good one."""
    good = _post_commit_frame()
    assert decode_frame(good).kind == "commit"
    canonical = cbrrr.encode_dag_cbor({"op": 1, "t": "#commit"})
    assert canonical == b"\xa2\x61t\x67#commit\x62op\x01" and good.startswith(canonical)
    swapped = b"\xa2\x62op\x01\x61t\x67#commit" + good[len(canonical) :]
    decoded = decode_frame(swapped)
    assert decoded.kind == "malformed"
    assert "canonical" in decoded.dead[0].detail


@pytest.mark.parametrize("whole_car", [True, False])
def test_a_commit_frame_with_bytes_after_its_body_is_refused(whole_car: bool) -> None:
    good = _post_commit_frame()
    for extra in (b"\x00", cbrrr.encode_dag_cbor({"seq": 8})):
        decoded = decode_frame(good + extra, whole_car=whole_car)
        assert decoded.kind == "malformed" and decoded.messages == []


def test_a_commit_whose_record_block_is_missing_or_forged_is_dead_lettered() -> None:
    repo = FakeRepo(ALICE)
    commit = repo.commit([Write("create", POST, "3kpost0000001", {"title": "a"})])
    record_cid = commit.ops[0]["cid"].cid_bytes
    blocks = {k: v for k, v in commit.blocks.items() if k != record_cid}
    body = commit_body(commit, 8, T0)
    body["blocks"] = write_car([commit.cid], blocks)
    decoded = decode_frame(encode_frame("#commit", body))
    assert decoded.messages == [] and decoded.dead[0].detail == "record block missing from CAR"
    forged = dict(commit.blocks)
    forged[record_cid] = cbrrr.encode_dag_cbor({"$type": POST, "title": "forged"})
    body["blocks"] = write_car([commit.cid], forged)
    decoded = decode_frame(encode_frame("#commit", body))
    assert decoded.messages == [] and "does not match its CID" in decoded.dead[0].detail


def test_mst_lookup_proves_presence_and_absence_and_needs_its_nodes() -> None:
    repo = FakeRepo(ALICE)
    commit = repo.commit(
        [Write("create", VOTE, f"3kvote{i:07d}", {"direction": "up"}) for i in range(300)]
    )
    car = read_car(commit.car(full=True))
    keys = [key for key, _ in mst.walk(car, commit.root)]
    assert len(keys) == 300 and keys == sorted(keys)
    assert mst.lookup(car, commit.root, f"{VOTE}/3kvote0000042") == commit.ops[42]["cid"].cid_bytes
    assert mst.lookup(car, commit.root, f"{VOTE}/3kvote9999999") is None
    assert mst.lookup(car, commit.root, "a/first") is None
    pruned = {k: v for k, v in car.blocks.items() if k in (commit.cid, commit.root)}
    car.blocks = pruned
    with pytest.raises(CarError):
        mst.lookup(car, commit.root, f"{VOTE}/3kvote0000042")


def test_reading_only_the_record_blocks_gives_the_same_events() -> None:
    """Without verification the decoder takes just the record blocks out of the CAR
    (find_block); what it yields must not differ from reading the whole CAR."""
    repo = FakeRepo(ALICE)
    frames = []
    for i in range(30):
        frames.append(
            _frame(
                repo,
                Write("create", VOTE, f"3kvote{i:07d}", {"direction": "up", "n": i}),
                Write("create", "app.bsky.feed.like", f"3klike{i:07d}", {"subject": "x"}),
                seq=i + 1,
            )
        )
    frames.append(_frame(repo, Write("delete", VOTE, "3kvote0000003"), seq=31))
    frames.append(
        _frame(repo, Write("update", POST, "3kpost0000001", {"title": "x" * 20_000}), seq=32)
    )
    for frame in frames:
        whole, records_only = decode_frame(frame), decode_frame(frame, whole_car=False)
        assert records_only.messages == whole.messages
        assert records_only.dead == whole.dead == []
        assert records_only.car is None and whole.car is not None


def test_a_record_block_missing_or_altered_is_dead_lettered_without_the_whole_car() -> None:
    repo = FakeRepo(ALICE)
    commit = repo.commit([Write("create", VOTE, "3kvote0000001", {"direction": "up"})])
    [record_cid] = [op["cid"].cid_bytes for op in commit.ops if op["cid"] is not None]
    altered = dict(commit.blocks)
    altered[record_cid] = altered[record_cid].replace(b"up", b"UP")
    missing = {cid: block for cid, block in commit.blocks.items() if cid != record_cid}
    for blocks, detail in ((missing, "missing"), (altered, "missing")):
        body = commit_body(commit, 9, T0)
        body["blocks"] = write_car([commit.cid], blocks)
        decoded = decode_frame(encode_frame("#commit", body), whole_car=False)
        assert decoded.messages == []
        [dead] = decoded.dead
        assert detail in dead.detail and dead.rkey == "3kvote0000001"
