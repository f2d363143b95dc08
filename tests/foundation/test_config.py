"""Configuration: parsing, explanations, production refusals, check-config, README."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from coves import cli
from coves.config import (
    DEV_CURSOR_SECRET,
    DEV_ENCRYPTION_KEY,
    DEV_OAUTH_SEAL_SECRET,
    VARS,
    ConfigError,
    load_settings,
)

GOOD_KEY = base64.b64encode(bytes(range(7, 39))).decode()
PRODUCTION = {
    "COVES_ENV": "production",
    "CURSOR_SECRET": "Zk3q9VbX2mWp7RtY4sLn8HcJ6dFg1AeQ",
    "ENCRYPTION_KEY": GOOD_KEY,
    "INSTANCE_DID": "did:web:coves.social",
    "DATABASE_URL": "postgresql://coves:pw@db.internal:5432/coves",
    "OAUTH_SEAL_SECRET": base64.b64encode(bytes(range(40, 72))).decode(),
    "OAUTH_CLIENT_PRIVATE_KEY": "11" * 32,
    "PDS_URL": "https://pds.coves.social",
}


def load(env: dict[str, str]) -> object:
    return load_settings(env, dotenv=None)


def test_defaults() -> None:
    settings = load_settings({}, dotenv=None)
    assert (settings.host, settings.port) == ("127.0.0.1", 8081)
    assert settings.data_dir == Path(".coves")
    assert settings.env == "development"
    assert settings.instance_domain == "localhost"
    assert settings.effective_log_format == "console"
    assert any("CURSOR_SECRET" in w for w in settings.warnings)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("COVES_PORT", "eighty", "must be a whole number"),
        ("COVES_PORT", "70000", "must be at most 65535"),
        ("DB_POOL_SIZE", "0", "must be at least 1"),
        ("AUTH_SKIP_VERIFY", "maybe", "must be true or false"),
        ("COVES_ENV", "staging", "must be one of development, production"),
        ("LOG_LEVEL", "loud", "must be one of"),
        ("PDS_URL", "ftp://x", "must be an absolute"),
        ("INSTANCE_DID", "web:coves", "must be a DID"),
        ("INSTANCE_DOMAIN", "https://coves.social/", "must be a bare domain"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,nonsense", "is not an IP address or CIDR"),
        ("ENCRYPTION_KEY", "not base64!!", "must be base64"),
        ("ENCRYPTION_KEY", base64.b64encode(b"short").decode(), "exactly 32 bytes"),
        ("SHUTDOWN_GRACE_SECONDS", "-1", "must be at least"),
        ("SHUTDOWN_GRACE_SECONDS", "soon", "must be a number"),
        ("ADMISSION_MAX_LOOP_LAG_MS", "-1", "must be at least 0"),
        ("ADMISSION_MAX_LOOP_LAG_MS", "fast", "must be a whole number"),
        ("OAUTH_CLIENT_PRIVATE_KEY", "zzz", "is not a P-256 private key"),
        ("OAUTH_CLIENT_PRIVATE_KEY", "00" * 32, "is not a P-256 private key"),
        ("OAUTH_WEB_REDIRECTS", "https://ok.example/cb,/relative", "is not an absolute redirect"),
        ("OAUTH_MOBILE_REDIRECTS", "social.coves:/cb#frag", "is not an absolute redirect"),
    ],
)
def test_invalid_values_name_the_variable_problem_and_example(
    name: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load({name: value})
    message = str(info.value)
    assert name in message
    assert problem in message
    var = next(v for v in VARS if v.name == name)
    assert f"example: {name}={var.example}" in message


def test_secret_values_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load({"ENCRYPTION_KEY": "c2VjcmV0LXZhbHVlLXNob3J0"})
    assert "c2VjcmV0LXZhbHVlLXNob3J0" not in str(info.value)
    assert "redacted" in str(info.value)


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load({"COVES_PORT": "x", "DB_POOL_SIZE": "y"})
    assert len(info.value.problems) == 2


def test_production_accepts_a_complete_configuration() -> None:
    settings = load_settings(PRODUCTION, dotenv=None)
    assert settings.is_production
    assert settings.effective_log_format == "json"
    assert settings.instance_domain == "coves.social"
    # Admission control as shipped: on, loop-lag shedding included.
    assert (settings.admission_max_concurrency, settings.admission_max_loop_lag_ms) == (32, 50)


@pytest.mark.parametrize(
    ("shortcut", "value"),
    [
        ("AUTH_SKIP_VERIFY", "true"),
        ("SKIP_DID_WEB_VERIFICATION", "true"),
        ("ALLOW_PRIVATE_NETWORK_FETCH", "true"),
        ("DEV_HANDLE_DOMAINS", ".coves.test"),
    ],
)
def test_production_refuses_dev_shortcuts(shortcut: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({**PRODUCTION, shortcut: value})
    assert shortcut in str(info.value) and "refused in production" in str(info.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"CURSOR_SECRET": ""}, "CURSOR_SECRET must be set"),
        ({"CURSOR_SECRET": DEV_CURSOR_SECRET}, "CURSOR_SECRET is the development default"),
        ({"ENCRYPTION_KEY": ""}, "ENCRYPTION_KEY must be set"),
        ({"INSTANCE_DID": "did:web:localhost"}, "INSTANCE_DID is the development default"),
        ({"OAUTH_SEAL_SECRET": ""}, "OAUTH_SEAL_SECRET must be set"),
        (
            {"OAUTH_SEAL_SECRET": DEV_OAUTH_SEAL_SECRET},
            "OAUTH_SEAL_SECRET is the development default",
        ),
        ({"OAUTH_CLIENT_PRIVATE_KEY": ""}, "OAUTH_CLIENT_PRIVATE_KEY must be set"),
        (
            {"OAUTH_SEAL_SECRET": base64.b64encode(b"s" * 32).decode()},
            "OAUTH_SEAL_SECRET is not random",
        ),
        ({"APPVIEW_PUBLIC_URL": "http://coves.example"}, "APPVIEW_PUBLIC_URL must be https"),
    ],
)
def test_production_refuses_default_or_missing_secrets(
    override: dict[str, str], expected: str
) -> None:
    env = {**PRODUCTION, **override}
    env = {k: v for k, v in env.items() if v != ""}
    with pytest.raises(ConfigError) as info:
        load(env)
    assert expected in str(info.value)


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("COVES_PORT=9001\nCOVES_HOST=0.0.0.0\n")
    settings = load_settings({"COVES_PORT": "9002"}, dotenv=dotenv)
    assert settings.port == 9002
    assert settings.host == "0.0.0.0"


def test_settings_are_immutable() -> None:
    settings = load_settings({}, dotenv=None)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_check_config_redacts_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "empty.env").write_text("")
    assert cli.main(["--env-file", str(tmp_path / "empty.env"), "check-config"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"COVES_ENV\s+production", out)
    assert PRODUCTION["CURSOR_SECRET"] not in out
    assert GOOD_KEY not in out
    assert "11" * 32 not in out
    assert "pw@db.internal" not in out
    assert re.search(r"CURSOR_SECRET\s+\(set, redacted\)", out)


def test_check_config_exits_non_zero_when_invalid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("COVES_ENV", "production")
    monkeypatch.setenv("AUTH_SKIP_VERIFY", "1")
    (tmp_path / "empty.env").write_text("")
    assert cli.main(["--env-file", str(tmp_path / "empty.env"), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "AUTH_SKIP_VERIFY" in err and "CURSOR_SECRET" in err


def test_readme_documents_every_variable() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    names = {var.name for var in VARS}
    assert names - documented == set(), "README is missing variables"
    assert documented - names == set(), "README lists variables that do not exist"


def _non_canonical(b64: str) -> str:
    """Another base64 spelling of the same bytes: set the unused low bits of the last digit."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = b64.rstrip("=")
    last = alphabet.index(body[-1])
    spelled = body[:-1] + alphabet[last | 0b11] + b64[len(body) :]
    assert spelled != b64 and base64.b64decode(spelled) == base64.b64decode(b64)
    return spelled


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"ENCRYPTION_KEY": _non_canonical(DEV_ENCRYPTION_KEY)},
            "ENCRYPTION_KEY is the development",
        ),
        ({"ENCRYPTION_KEY": base64.b64encode(b"\0" * 32).decode()}, "ENCRYPTION_KEY is not random"),
        ({"CURSOR_SECRET": "x"}, "CURSOR_SECRET is too weak"),
        ({"CURSOR_SECRET": "x" * 40}, "CURSOR_SECRET is too weak"),
        ({"CURSOR_SECRET": "CHANGE_ME"}, "CURSOR_SECRET is a placeholder"),
        ({"CURSOR_SECRET": "<random string of 32 bytes or more>"}, "placeholder"),
        (
            {"ENCRYPTION_OLD_KEYS": DEV_ENCRYPTION_KEY},
            "ENCRYPTION_OLD_KEYS contains the development",
        ),
        ({"DATABASE_URL": "postgresql://coves:CHANGE_ME@db:5432/coves"}, "placeholder"),
        (
            {"INSTANCE_DID": "did:web:localhost%3A8081"},
            "INSTANCE_DID did:web:localhost%3A8081 is not",
        ),
        ({"INSTANCE_DID": "did:web:coves.example"}, "is not a public domain"),
        ({"INSTANCE_DID": "did:web:127.0.0.1"}, "is not a public domain"),
        ({"INSTANCE_DOMAIN": "localhost"}, "INSTANCE_DOMAIN localhost is not a public domain"),
        ({"APPVIEW_PUBLIC_URL": "http://127.0.0.1:8081"}, "APPVIEW_PUBLIC_URL host 127.0.0.1"),
        (
            {"OAUTH_SEAL_SECRET": _non_canonical(DEV_OAUTH_SEAL_SECRET)},
            "OAUTH_SEAL_SECRET is the development default",
        ),
        (
            {"OAUTH_SEAL_OLD_SECRETS": _non_canonical(DEV_OAUTH_SEAL_SECRET)},
            "OAUTH_SEAL_OLD_SECRETS contains the development secret",
        ),
        (
            {"OAUTH_SEAL_SECRET": base64.b64encode(bytes(range(40, 56))).decode()},
            "OAUTH_SEAL_SECRET=(redacted) must decode to exactly 32 bytes",
        ),
        ({"PDS_URL": ""}, "PDS_URL must be set in production"),
        ({"PDS_URL": "http://localhost:3001"}, "PDS_URL must be set in production"),
        ({"PDS_URL": "http://127.0.0.1:2583"}, "PDS_URL http://127.0.0.1:2583 is not https"),
        ({"PDS_URL": "https://localhost:2583"}, "which is not a public host"),
        ({"PDS_URL": "https://[::1]:2583"}, "PDS_URL https://[::1]:2583 points at ::1"),
        ({"PDS_URL": "http://pds.coves.social"}, "PDS_URL http://pds.coves.social is not https"),
        (
            {"OAUTH_WEB_REDIRECTS": "http://coves.social/api/auth/callback"},
            "OAUTH_WEB_REDIRECTS target http://coves.social/api/auth/callback is not https",
        ),
        (
            {"OAUTH_WEB_REDIRECTS": "https://coves.social/cb,https://localhost:3000/cb"},
            "OAUTH_WEB_REDIRECTS target https://localhost:3000/cb points at localhost",
        ),
        (
            {"OAUTH_MOBILE_REDIRECTS": "social.coves:/callback,http://10.0.2.2:8081/cb"},
            "OAUTH_MOBILE_REDIRECTS target http://10.0.2.2:8081/cb is not https",
        ),
        (
            {"OAUTH_MOBILE_REDIRECTS": "https://127.0.0.1/cb"},
            "OAUTH_MOBILE_REDIRECTS target https://127.0.0.1/cb points at 127.0.0.1",
        ),
        (
            {"PLC_DIRECTORY_URL": "http://localhost:2582"},
            "PLC_DIRECTORY_URL http://localhost:2582 is not https",
        ),
        ({"PLC_DIRECTORY_URL": "https://plc.internal"}, "PLC_DIRECTORY_URL https://plc.internal"),
        (
            {"OAUTH_ISSUERS": "https://bsky.social,http://localhost:2583"},
            "OAUTH_ISSUERS entry http://localhost:2583 is not https",
        ),
    ],
)
def test_production_refuses_weak_placeholder_and_loopback_settings(
    override: dict[str, str], expected: str
) -> None:
    env = {k: v for k, v in {**PRODUCTION, **override}.items() if v != ""}  # "": unset
    with pytest.raises(ConfigError) as info:
        load(env)
    assert expected in str(info.value)


def test_production_accepts_app_schemes_and_public_https_redirects() -> None:
    settings = load_settings(
        {
            **PRODUCTION,
            "OAUTH_WEB_REDIRECTS": "https://coves.social/api/auth/callback",
            "OAUTH_MOBILE_REDIRECTS": "social.coves:/callback,https://coves.social/app/cb",
            "OAUTH_ISSUERS": "https://bsky.social",
            "OAUTH_SEAL_OLD_SECRETS": base64.b64encode(bytes(range(80, 112))).decode(),
        },
        dotenv=None,
    )
    assert settings.oauth_mobile_redirects == (
        "social.coves:/callback",
        "https://coves.social/app/cb",
    )
    assert len(settings.oauth_seal_old_secrets) == 1


def test_development_keeps_loopback_and_http_endpoints() -> None:
    settings = load_settings(
        {
            "PDS_URL": "http://127.0.0.1:2583",
            "PLC_DIRECTORY_URL": "http://127.0.0.1:2582",
            "OAUTH_WEB_REDIRECTS": "http://localhost:3000/cb",
            "OAUTH_ISSUERS": "http://localhost:2583",
        },
        dotenv=None,
    )
    assert settings.pds_url == "http://127.0.0.1:2583"
    assert settings.oauth_web_redirects == ("http://localhost:3000/cb",)


def test_the_shipped_production_example_is_refused_until_filled_in() -> None:
    from dotenv import dotenv_values

    example = Path(__file__).parents[2] / "deploy" / "env.production.example"
    values = {k: v for k, v in dotenv_values(example).items() if v is not None}
    with pytest.raises(ConfigError) as info:
        load(values)
    # The placeholders are not even base64 / keys.
    for name in ("ENCRYPTION_KEY", "OAUTH_SEAL_SECRET", "OAUTH_CLIENT_PRIVATE_KEY"):
        assert name in str(info.value)
    keys = {name: PRODUCTION[name] for name in ("OAUTH_SEAL_SECRET", "OAUTH_CLIENT_PRIVATE_KEY")}
    with pytest.raises(ConfigError) as info:
        load({**values, "ENCRYPTION_KEY": GOOD_KEY, **keys})
    message = str(info.value)
    for name in ("CURSOR_SECRET", "DATABASE_URL", "INSTANCE_DID", "INSTANCE_DOMAIN", "PDS_URL"):
        assert name in message


@pytest.mark.parametrize(
    "url", ["mysql://coves:pw@db/coves", "sqlite:///coves.db", "nonsense", "http://db/coves"]
)
def test_database_url_must_be_postgresql(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({"DATABASE_URL": url})
    assert "DATABASE_URL=(redacted)" in str(info.value)


@pytest.mark.parametrize(
    "url", ["postgresql://coves:pw@db:5432/coves", "postgres://db/coves", "host=/run dbname=coves"]
)
def test_database_url_accepts_postgresql_urls_and_conninfo(url: str) -> None:
    settings = load_settings({"DATABASE_URL": url}, dotenv=None)
    assert settings.database_url is not None and settings.database_url.reveal() == url


def test_old_keys_join_the_ring() -> None:
    old = base64.b64encode(bytes(range(100, 132))).decode()
    settings = load_settings({**PRODUCTION, "ENCRYPTION_OLD_KEYS": f"{old}, "}, dotenv=None)
    box = settings.secret_box()
    assert len(box.key_ids) == 2
    assert settings.redacted()["ENCRYPTION_OLD_KEYS"] == "(set, redacted)"
    with pytest.raises(ConfigError) as info:
        load({"ENCRYPTION_OLD_KEYS": f"{old},c2hvcnQ="})
    assert "key 2 must decode to exactly 32 bytes" in str(info.value)


def test_a_missing_env_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--env-file", str(tmp_path / "nope.env"), "check-config"]) == 2
    assert "nope.env: no such file" in capsys.readouterr().err
