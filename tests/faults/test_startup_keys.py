"""The real binary: a changed ENCRYPTION_KEY refuses to start; rotation; --no-migrate."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.database import TestPostgres
from tests.support.process import run_coves, serving


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def database(pg: TestPostgres) -> Iterator[str]:
    name = pg.create_database()
    try:
        yield pg.conninfo(name)
    finally:
        pg.drop_database(name)


def did_key(base: str) -> str:
    response = httpx.get(f"{base}/.well-known/did.json", timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["verificationMethod"][0]["publicKeyMultibase"])


def test_a_new_key_refuses_to_start_until_rotation_and_the_identity_survives(
    server_dir: Path, database: str
) -> None:
    old, new = new_key(), new_key()
    with serving(server_dir, DATABASE_URL=database, ENCRYPTION_KEY=old) as (_proc, base):
        identity = did_key(base)  # generated and sealed with the old key

    refused = run_coves(server_dir, "serve", DATABASE_URL=database, ENCRYPTION_KEY=new)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 2, output
    assert "refuses to start" in output and "ENCRYPTION_OLD_KEYS" in output
    assert "instance_secrets.sealed" in output
    assert old not in output and new not in output
    assert output.count("Traceback") == 0

    ring = {"DATABASE_URL": database, "ENCRYPTION_KEY": new, "ENCRYPTION_OLD_KEYS": old}
    with serving(server_dir, **ring) as (_proc, base):
        assert did_key(base) == identity
        rotated = run_coves(server_dir, "rotate-key", **ring)  # while serving
        assert rotated.returncode == 0, rotated.stderr
        assert "instance_secrets.sealed: re-sealed 1" in rotated.stdout

    with serving(server_dir, DATABASE_URL=database, ENCRYPTION_KEY=new) as (_proc, base):
        assert did_key(base) == identity


def test_rotate_key_fails_naming_values_no_key_opens(server_dir: Path, database: str) -> None:
    old = new_key()
    with serving(server_dir, DATABASE_URL=database, ENCRYPTION_KEY=old) as (_proc, base):
        did_key(base)
    result = run_coves(server_dir, "rotate-key", DATABASE_URL=database, ENCRYPTION_KEY=new_key())
    assert result.returncode == 1
    assert "cannot open instance_secrets.sealed (name='instance_signing_key')" in result.stdout
    assert "ENCRYPTION_OLD_KEYS" in result.stderr


def test_no_migrate_on_an_unmigrated_database_refuses_to_start(
    server_dir: Path, pg: TestPostgres
) -> None:
    name = pg.create_empty_database()
    try:
        result = run_coves(server_dir, "serve", "--no-migrate", DATABASE_URL=pg.conninfo(name))
    finally:
        pg.drop_database(name)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "schema is not current" in output and "coves migrate" in output
    assert "Traceback" not in output
