from __future__ import annotations

from typing import Any

import orjson
import pytest

from coves.atproto.keys import PrivateKey
from coves.cli import main
from coves.identity.factory import build_resolver
from tests.support.fake_did import PLC_URL, FakeNetwork

ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> FakeNetwork:
    network = FakeNetwork()
    monkeypatch.setattr("coves.identity.cli.build_fetcher", lambda settings: network.fetcher())
    real_build_resolver = build_resolver

    def resolver(settings: Any, db: Any, fetcher: Any) -> Any:
        return real_build_resolver(
            settings.replace(plc_url=PLC_URL), db, fetcher, txt_lookup=network.txt_lookup
        )

    monkeypatch.setattr("coves.identity.cli.build_resolver", resolver)
    monkeypatch.chdir(tmp_path)
    return network


def test_resolve_prints_the_identity(net: FakeNetwork, capsys: pytest.CaptureFixture[str]) -> None:
    key = PrivateKey.generate()
    net.add_plc(ALICE, key, "alice.example.com")
    assert main(["resolve", "alice.example.com"]) == 0
    body = orjson.loads(capsys.readouterr().out)
    assert body["did"] == ALICE and body["handleVerified"] is True
    assert body["signingKey"] == key.public().did_key()
    assert body["verificationMethods"] == ["atproto"]


def test_resolve_failure_exits_1(net: FakeNetwork, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", ALICE]) == 1
    assert orjson.loads(capsys.readouterr().out)["error"] == "not_found"
