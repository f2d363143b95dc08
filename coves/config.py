"""Settings: every knob Coves reads, parsed once from the environment.

The registry below is the single source of truth. It drives parsing, the
production safety checks, ``coves check-config`` and the configuration table
in the README (a test keeps the README in step), so a variable cannot exist
in one place and be missing from another.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from coves.secrets import Secret, SecretBox

Env = Literal["development", "production"]

DEV_CURSOR_SECRET = "dev-cursor-secret-change-in-production"  # noqa: S105
DEV_ENCRYPTION_KEY = base64.b64encode(b"coves-development-only-key-32byt").decode()
DEV_OAUTH_SEAL_SECRET = base64.b64encode(b"coves-dev-only-oauth-seal-secret").decode()
DEFAULT_JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
_DEFAULT_PDS_URL = "http://localhost:3001"


class ConfigError(Exception):
    """Raised when the environment cannot produce valid settings.

    Carries every problem at once so an operator fixes them in one pass.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


T = TypeVar("T")


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _int(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}")
        return value

    return parse


def _float(low: float = 0.0) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("must be a number") from None
        if value < low:
            raise ValueError(f"must be at least {low}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"must be an absolute {'/'.join(schemes)} URL")
        return value.rstrip("/") if parts.path in {"", "/"} else value

    return parse


def _did(raw: str) -> str:
    from coves.atproto.syntax import is_valid_did

    value = raw.strip()
    if not is_valid_did(value):
        raise ValueError("must be a DID such as did:web:coves.social")
    return value


def _domain(raw: str) -> str:
    value = raw.strip().lower()
    if not value or "/" in value or ":" in value.split("]")[-1].split(":")[0] or " " in value:
        raise ValueError("must be a bare domain name")
    return value


def _path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _handle_domains(raw: str) -> tuple[str, ...]:
    """``.coves.test`` style suffixes (lowercase, leading dot), each a domain name."""
    from coves.atproto.syntax import is_valid_handle

    domains = []
    for item in _csv(raw):
        domain = item.lower().lstrip(".")
        if not is_valid_handle(domain):
            raise ValueError(f"{item!r} is not a domain name")
        domains.append("." + domain)
    return tuple(domains)


def _ws_urls(raw: str) -> tuple[str, ...]:
    parse = _url("ws", "wss")
    urls = tuple(parse(item) for item in _csv(raw))
    if len(set(urls)) != len(urls):
        raise ValueError("lists the same URL twice")
    return urls


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for item in _csv(raw):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(nets)


def _dids(raw: str) -> tuple[str, ...]:
    values = _csv(raw)
    for value in values:
        _did(value)
    return values


def _secret(raw: str) -> Secret:
    if not raw.strip():
        raise ValueError("must not be empty")
    return Secret(raw.strip())


def _key32(raw: str) -> Secret:
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except ValueError:
        raise ValueError("must be base64") from None
    if len(decoded) != 32:
        raise ValueError("must decode to exactly 32 bytes")
    return Secret(raw.strip())


def _fraction(raw: str) -> float:
    value = _float(0.0)(raw)
    if value > 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _gc_thresholds(raw: str) -> tuple[int, ...]:
    parts = _csv(raw)
    if not 1 <= len(parts) <= 3:
        raise ValueError("must be one to three whole numbers (gen0,gen1,gen2)")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError("must be whole numbers") from None
    if any(v < 0 for v in values):
        raise ValueError("must not be negative")
    return values


def _p256_private_key(raw: str) -> Secret:
    """A P-256 private key as 64 hex digits or multibase (``z`` + p256-priv multicodec)."""
    from coves.atproto.keys import KeyError_, parse_p256_private

    try:
        return Secret(parse_p256_private(raw.strip()).to_hex())
    except KeyError_ as exc:
        raise ValueError(f"is not a P-256 private key ({exc})") from None


def _redirect_urls(raw: str) -> tuple[str, ...]:
    """Absolute redirect targets (web URLs or app URIs such as social.coves:/callback)."""
    items = _csv(raw)
    for item in items:
        parts = urlsplit(item)
        web = parts.scheme in ("http", "https")
        if not parts.scheme or parts.fragment or (web and not parts.netloc):
            raise ValueError(f"{item!r} is not an absolute redirect URL without a #fragment")
    return items


def _key_list(parse_one: Callable[[str], Secret]) -> Callable[[str], tuple[Secret, ...]]:
    """A comma-separated list of keys, each parsed by ``parse_one``; errors name the key."""

    def parse(raw: str) -> tuple[Secret, ...]:
        keys = []
        for position, item in enumerate(_csv(raw), start=1):
            try:
                keys.append(parse_one(item))
            except ValueError as exc:
                raise ValueError(f"key {position} {exc}") from None
        return tuple(keys)

    return parse


_keys32 = _key_list(_key32)
_p256_private_keys = _key_list(_p256_private_key)


def _database_url(raw: str) -> Secret:
    """A PostgreSQL URL or libpq ``key=value`` string; other databases' URLs are refused."""
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    if "://" in value:
        if urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL (Coves runs on PostgreSQL only)")
    elif "=" not in value:
        raise ValueError("must be a postgresql:// URL or a libpq key=value string")
    return Secret(value)


def _log_level(raw: str) -> str:
    return _choice("debug", "info", "warning", "error")(raw)


@dataclass(frozen=True)
class Var:
    """One environment variable: how to parse it and how to explain it."""

    name: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    example: str
    secret: bool = False


VARS: tuple[Var, ...] = (
    Var(
        "COVES_ENV",
        "env",
        _choice("development", "production"),
        "development",
        "development or production; production refuses dev shortcuts and default secrets",
        "production",
    ),
    Var(
        "COVES_HOST",
        "host",
        str.strip,
        "127.0.0.1",
        "address the XRPC server listens on",
        "0.0.0.0",  # noqa: S104 - an example, not a default
    ),
    Var("COVES_PORT", "port", _int(0, 65535), 8081, "port the XRPC server listens on", "8081"),
    Var(
        "COVES_DATA_DIR",
        "data_dir",
        _path,
        Path(".coves"),
        "directory for the embedded PostgreSQL and other local state",
        "/var/lib/coves",
    ),
    Var(
        "DATABASE_URL",
        "database_url",
        _database_url,
        None,
        "external PostgreSQL connection URL; when unset Coves runs its own embedded PostgreSQL",
        "postgresql://coves:pw@db:5432/coves",
        secret=True,
    ),
    Var(
        "COVES_WORKERS",
        "workers",
        _int(0, 1024),
        None,
        "API worker processes `coves serve` runs on the one port, beside one ingesting "
        "process; 0 runs everything in a single process; unset: one per core",
        "4",
    ),
    Var(
        "COVES_ROLE",
        "role",
        _choice("all", "api", "ingest"),
        "all",
        "what `coves serve` runs: all, api (the XRPC workers only) or ingest (the consumer "
        "and upkeep only); split roles need DATABASE_URL",
        "api",
    ),
    Var(
        "DB_POOL_SIZE",
        "db_pool_size",
        _int(1, 200),
        10,
        "PostgreSQL connections in the pool (also the size of the thread limiter)",
        "20",
    ),
    Var(
        "INGEST_DB_POOL_SIZE",
        "ingest_db_pool_size",
        _int(1, 200),
        4,
        "PostgreSQL connections the ingesting process keeps for the indexer and upkeep, "
        "apart from the read pool",
        "4",
    ),
    Var(
        "DB_STATEMENT_TIMEOUT_MS",
        "db_statement_timeout_ms",
        _int(1),
        10_000,
        "per-statement timeout in milliseconds",
        "5000",
    ),
    Var(
        "DB_MIGRATE_ON_START",
        "db_migrate_on_start",
        _bool,
        True,
        "apply pending migrations when the server starts",
        "false",
    ),
    Var("LOG_LEVEL", "log_level", _log_level, "info", "debug, info, warning or error", "debug"),
    Var(
        "LOG_FORMAT",
        "log_format",
        _choice("auto", "json", "console"),
        "auto",
        "json, console, or auto (json in production, console in development)",
        "json",
    ),
    Var(
        "INSTANCE_DID",
        "instance_did",
        _did,
        "did:web:localhost",
        "this instance's DID (did:web); communities it hosts carry it as hostedBy",
        "did:web:coves.social",
    ),
    Var(
        "INSTANCE_DOMAIN",
        "instance_domain",
        _domain,
        None,
        "this instance's domain; defaults to the did:web host",
        "coves.social",
    ),
    Var(
        "INSTANCE_SIGNING_KEY",
        "instance_signing_key",
        _secret,
        None,
        "hex secp256k1 private key for the instance DID document; generated and stored "
        "encrypted in the database when unset",
        "<64 hex chars>",
        secret=True,
    ),
    Var(
        "APPVIEW_SERVICE_ID",
        "appview_service_id",
        str.strip,
        "coves_appview",
        "service id of the AppView entry in did.json and the aud fragment of service auth",
        "coves_appview",
    ),
    Var(
        "APPVIEW_PUBLIC_URL",
        "appview_public_url",
        _url("http", "https"),
        None,
        "public base URL of this AppView; defaults to https://<INSTANCE_DOMAIN>",
        "https://coves.social",
    ),
    Var(
        "PDS_URL",
        "pds_url",
        _url("http", "https"),
        _DEFAULT_PDS_URL,
        "the instance PDS that hosts community accounts (https on a public host in production)",
        "https://coves.me",
    ),
    Var(
        "PDS_ADMIN_PASSWORD",
        "pds_admin_password",
        _secret,
        None,
        "admin password of the instance PDS; lets Coves mint the invite codes a PDS that "
        "requires invites wants for new community accounts",
        "<the PDS's PDS_ADMIN_PASSWORD>",
        secret=True,
    ),
    Var(
        "COMMUNITY_CREATORS",
        "community_creators",
        _dids,
        (),
        "comma-separated DIDs allowed to create communities; empty lets every signed-in user",
        "did:plc:abc123,did:plc:def456",
    ),
    Var(
        "COMMUNITY_CREATES_PER_DAY",
        "community_creates_per_day",
        _int(1),
        5,
        "communities one user may create per 24 hours",
        "5",
    ),
    Var(
        "COMMUNITY_REFRESH_ENABLED",
        "community_refresh_enabled",
        _bool,
        True,
        "run the community token refresher child (sessions are still refreshed before writes)",
        "true",
    ),
    Var(
        "COMMUNITY_REFRESH_AHEAD_SECONDS",
        "community_refresh_ahead_seconds",
        _float(60.0),
        1800.0,
        "refresh a community's PDS session this long before its access token expires "
        "(spread with jitter over the second half of that window)",
        "1800",
    ),
    Var(
        "CURSOR_SECRET",
        "cursor_secret",
        _secret,
        None,
        "HMAC key that signs feed cursors (required in production)",
        "<random string>",
        secret=True,
    ),
    Var(
        "ENCRYPTION_KEY",
        "encryption_key",
        _key32,
        None,
        "base64 of 32 random bytes; encrypts secrets stored in the database "
        "(required in production)",
        "<base64 of 32 bytes>",
        secret=True,
    ),
    Var(
        "ENCRYPTION_OLD_KEYS",
        "encryption_old_keys",
        _keys32,
        (),
        "comma-separated earlier ENCRYPTION_KEY values: they still open what they sealed "
        "until `coves rotate-key` has re-sealed it with ENCRYPTION_KEY",
        "<old base64 key>",
        secret=True,
    ),
    Var(
        "AUTH_SKIP_VERIFY",
        "auth_skip_verify",
        _bool,
        False,
        "development only: accept unverified tokens (refused in production)",
        "false",
    ),
    Var(
        "SKIP_DID_WEB_VERIFICATION",
        "skip_did_web_verification",
        _bool,
        False,
        "development only: accept foreign hostedBy claims without fetching did.json",
        "false",
    ),
    Var(
        "ALLOW_PRIVATE_NETWORK_FETCH",
        "allow_private_network_fetch",
        _bool,
        False,
        "development only: let identity fetches reach private and loopback addresses",
        "false",
    ),
    Var(
        "DEV_HANDLE_DOMAINS",
        "dev_handle_domains",
        _handle_domains,
        (),
        "development only: comma-separated handle domains (a local PDS's, e.g. .coves.test) "
        "whose handles are resolved by asking PDS_URL (com.atproto.identity.resolveHandle) "
        "instead of DNS and HTTPS; refused in production",
        ".coves.test",
    ),
    Var(
        "CORS_ORIGINS",
        "cors_origins",
        _csv,
        ("*",),
        "comma-separated origins allowed by CORS, or *",
        "https://coves.social",
    ),
    Var(
        "TRUSTED_PROXIES",
        "trusted_proxies",
        _networks,
        (),
        "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed",
        "10.0.0.0/8,127.0.0.1",
    ),
    Var(
        "MAX_REQUEST_BODY_BYTES",
        "max_request_body_bytes",
        _int(1024),
        1_048_576,
        "largest accepted request body; larger gets 413",
        "1048576",
    ),
    Var(
        "RATE_LIMIT_GENERAL",
        "rate_limit_general",
        _int(1),
        100,
        "requests per minute per client on every XRPC route",
        "100",
    ),
    Var(
        "RATE_LIMIT_COMMENTS",
        "rate_limit_comments",
        _int(1),
        20,
        "requests per minute per client on comment endpoints (on top of general)",
        "20",
    ),
    Var(
        "RATE_LIMIT_SYNC_SECONDS",
        "rate_limit_sync_seconds",
        _float(0.0),
        1.0,
        "how often worker processes add up their rate-limit counts in PostgreSQL; 0 counts "
        "per process (each allows the full limit)",
        "1",
    ),
    Var(
        "RATE_LIMIT_USER_WRITES",
        "rate_limit_user_writes",
        _int(1),
        60,
        "writes per minute per signed-in account through Coves (votes, comments, "
        "subscriptions, blocks, profile)",
        "60",
    ),
    Var(
        "RATE_LIMIT_API_KEY",
        "rate_limit_api_key",
        _int(1),
        600,
        "requests per minute per aggregator API key, across all worker processes (on top "
        "of the per-client limits)",
        "600",
    ),
    Var(
        "RATE_LIMIT_SEARCH",
        "rate_limit_search",
        _int(1),
        30,
        "requests per minute per client on post search (on top of general)",
        "30",
    ),
    Var(
        "RESPONSE_CACHE_SECONDS",
        "response_cache_seconds",
        _float(0.0),
        1.0,
        "longest anonymous read responses (feeds, communities, threads, profiles) are shared "
        "from the response micro-cache; 0 turns it off",
        "1",
    ),
    Var(
        "VIEWER_CACHE_SECONDS",
        "viewer_cache_seconds",
        _float(0.0),
        1.0,
        "longest a viewer's own getTimeline response is reused for that viewer; dropped at "
        "once when the indexer applies a record from the viewer's repo; 0 turns it off",
        "1",
    ),
    Var(
        "READ_CACHE_SECONDS",
        "read_cache_seconds",
        _float(0.0),
        2.0,
        "longest a process reuses a built post view, comment thread or community lookup; "
        "any change to what one shows drops it at once in every process, so this only "
        "bounds staleness while a process's invalidation listener reconnects; 0 turns "
        "them off",
        "2",
    ),
    Var(
        "SWITCH_INTERVAL_SECONDS",
        "switch_interval_seconds",
        _float(0.0),
        0.0,
        "GIL switch interval set when serving (sys.setswitchinterval); 0 keeps Python's 0.005",
        "0.0005",
    ),
    Var(
        "GC_THRESHOLDS",
        "gc_thresholds",
        _gc_thresholds,
        (50_000, 20, 100),
        "Python's garbage-collector thresholds (gen0,gen1,gen2) set when serving; "
        "Python's own are 700,10,10",
        "50000,20,100",
    ),
    Var(
        "GC_FREEZE",
        "gc_freeze",
        _bool,
        True,
        "move everything allocated during start-up out of the collector's reach (gc.freeze)",
        "true",
    ),
    Var(
        "SHUTDOWN_GRACE_SECONDS",
        "shutdown_grace_seconds",
        _float(0.0),
        10.0,
        "how long in-flight requests may run after SIGTERM",
        "10",
    ),
    Var(
        "ADMISSION_MAX_CONCURRENCY",
        "admission_max_concurrency",
        _int(0, 100_000),
        32,
        "most XRPC requests one process handles at once; more wait in a queue; "
        "0 turns admission control off",
        "32",
    ),
    Var(
        "ADMISSION_MAX_QUEUE",
        "admission_max_queue",
        _int(0, 1_000_000),
        512,
        "most XRPC requests waiting for a slot per process; beyond it they get 503 at once",
        "512",
    ),
    Var(
        "ADMISSION_QUEUE_TIMEOUT_MS",
        "admission_queue_timeout_ms",
        _int(1, 600_000),
        500,
        "longest a request waits for a slot before 503; also refused at once when the "
        "queue ahead would take longer",
        "500",
    ),
    Var(
        "ADMISSION_MAX_LOOP_LAG_MS",
        "admission_max_loop_lag_ms",
        _int(0, 60_000),
        50,
        "event-loop lag past which new XRPC requests are shed with 503 (a growing share: "
        "all of them at twice this lag), before they cost a slot; 0 turns it off",
        "50",
    ),
    Var(
        "ADMISSION_RETRY_AFTER_SECONDS",
        "admission_retry_after_seconds",
        _int(1, 3600),
        1,
        "Retry-After sent with a 503 from admission control",
        "1",
    ),
    Var(
        "PLC_DIRECTORY_URL",
        "plc_url",
        _url("http", "https"),
        "https://plc.directory",
        "PLC directory used to resolve did:plc",
        "https://plc.directory",
    ),
    Var(
        "IDENTITY_CACHE_TTL_SECONDS",
        "identity_cache_ttl_seconds",
        _int(1),
        86_400,
        "how long resolved identities are cached",
        "86400",
    ),
    Var(
        "IDENTITY_NEGATIVE_TTL_SECONDS",
        "identity_negative_ttl_seconds",
        _int(1),
        300,
        "how long failed resolutions are cached",
        "300",
    ),
    Var(
        "SERVICE_AUTH_MAX_LIFETIME_SECONDS",
        "service_auth_max_lifetime_seconds",
        _int(1),
        300,
        "longest exp-iat accepted on a service-auth JWT",
        "300",
    ),
    Var(
        "OAUTH_ISSUERS",
        "oauth_issuers",
        _csv,
        (),
        "comma-separated OAuth authorization servers whose access tokens are accepted",
        "https://bsky.social",
    ),
    Var(
        "OAUTH_SEAL_SECRET",
        "oauth_seal_secret",
        _key32,
        None,
        "base64 of 32 random bytes; seals the session tokens handed to signed-in clients "
        "(required in production; to change it without signing anyone out, move the old "
        "one to OAUTH_SEAL_OLD_SECRETS)",
        "<base64 of 32 bytes>",
        secret=True,
    ),
    Var(
        "OAUTH_SEAL_OLD_SECRETS",
        "oauth_seal_old_secrets",
        _keys32,
        (),
        "comma-separated earlier OAUTH_SEAL_SECRET values: session tokens they sealed still "
        "open (until they expire, at most 30 days) while new ones are sealed with "
        "OAUTH_SEAL_SECRET",
        "<old base64 secret>",
        secret=True,
    ),
    Var(
        "OAUTH_CLIENT_PRIVATE_KEY",
        "oauth_client_private_key",
        _p256_private_key,
        None,
        "P-256 private key (hex or multibase) of the confidential OAuth client, published as "
        "/oauth-client-keys.json (required in production; `coves oauth-keygen` makes one)",
        "<z... multibase>",
        secret=True,
    ),
    Var(
        "OAUTH_CLIENT_OLD_KEYS",
        "oauth_client_old_keys",
        _p256_private_keys,
        (),
        "comma-separated earlier OAuth client keys, still published and used for the sessions "
        "started with them (authorization servers bind sessions to the key); drop one once "
        "its sessions have ended",
        "<z... multibase>",
        secret=True,
    ),
    Var(
        "OAUTH_WEB_REDIRECTS",
        "oauth_web_redirects",
        _redirect_urls,
        (),
        "where the web sign-in may send the browser back to (scheme, host and path must "
        "match one exactly); the first is the default; empty means APPVIEW_PUBLIC_URL/",
        "https://coves.social/api/auth/callback",
    ),
    Var(
        "OAUTH_MOBILE_REDIRECTS",
        "oauth_mobile_redirects",
        _redirect_urls,
        ("social.coves:/callback",),
        "app redirect URIs the mobile sign-in may hand the session token to",
        "social.coves:/callback",
    ),
    Var(
        "JETSTREAM_URL",
        "jetstream_url",
        _url("ws", "wss"),
        DEFAULT_JETSTREAM_URL,
        "Jetstream /subscribe endpoint",
        "wss://jetstream2.us-east.bsky.network/subscribe",
    ),
    Var(
        "JETSTREAM_ENABLED",
        "jetstream_enabled",
        _bool,
        True,
        "run the Jetstream consumer child",
        "true",
    ),
    Var(
        "JETSTREAM_REWIND_SECONDS",
        "jetstream_rewind_seconds",
        _float(0.0),
        5.0,
        "how far before the stored cursor to resume after a reconnect",
        "5",
    ),
    Var(
        "JETSTREAM_BATCH_SIZE",
        "jetstream_batch_size",
        _int(1, 100_000),
        500,
        "most events applied in one transaction",
        "500",
    ),
    Var(
        "JETSTREAM_BATCH_MS",
        "jetstream_batch_ms",
        _int(1),
        200,
        "longest an event waits before its batch is applied",
        "200",
    ),
    Var(
        "JETSTREAM_IDLE_TIMEOUT_SECONDS",
        "jetstream_idle_timeout_seconds",
        _float(1.0),
        90.0,
        "reconnect when no frame arrives for this long",
        "90",
    ),
    Var(
        "JETSTREAM_PING_INTERVAL_SECONDS",
        "jetstream_ping_interval_seconds",
        _float(0.1),
        30.0,
        "how often the consumer pings Jetstream",
        "30",
    ),
    Var(
        "JETSTREAM_PONG_TIMEOUT_SECONDS",
        "jetstream_pong_timeout_seconds",
        _float(0.1),
        10.0,
        "reconnect when a ping is not answered within this long",
        "10",
    ),
    Var(
        "JETSTREAM_CONNECT_TIMEOUT_SECONDS",
        "jetstream_connect_timeout_seconds",
        _float(0.1),
        10.0,
        "longest a Jetstream dial and websocket handshake may take",
        "10",
    ),
    Var(
        "JETSTREAM_MAX_MESSAGE_BYTES",
        "jetstream_max_message_bytes",
        _int(5_000_000, 256 * 1024 * 1024),
        8 * 1024 * 1024,
        "largest Jetstream frame accepted (frames can reach 5 MB; never lower)",
        "8388608",
    ),
    Var(
        "JETSTREAM_BREAKER_THRESHOLD",
        "jetstream_breaker_threshold",
        _int(1, 1000),
        5,
        "consecutive failed connections that open the circuit breaker",
        "5",
    ),
    Var(
        "JETSTREAM_BREAKER_COOLDOWN_SECONDS",
        "jetstream_breaker_cooldown_seconds",
        _float(0.0),
        60.0,
        "how long an open breaker waits before one probe connection",
        "60",
    ),
    Var(
        "FIREHOSE_URL",
        "firehose_urls",
        _ws_urls,
        (),
        "comma-separated PDS or relay firehoses (com.atproto.sync.subscribeRepos) to index,"
        " each with its own seq cursor; set JETSTREAM_ENABLED=false to index from them alone",
        "wss://pds.coves.social",
    ),
    Var(
        "FIREHOSE_VERIFY",
        "firehose_verify",
        _bool,
        False,
        "check each firehose commit's signature against the repo's #atproto key and prove"
        " its operations in the signed tree; failures are dead-lettered",
        "true",
    ),
    Var(
        "FIREHOSE_IDLE_TIMEOUT_SECONDS",
        "firehose_idle_timeout_seconds",
        _float(1.0),
        600.0,
        "reconnect a firehose that sent no frame for this long (a quiet PDS sends nothing;"
        " pings still detect a dead connection)",
        "600",
    ),
    Var(
        "BLOB_URL_TEMPLATE",
        "blob_url_template",
        str.strip,
        "{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}",
        "URL template for blobs in views: {pds}, {did}, {cid} and {preset} (thumb, fullsize,"
        " avatar, banner, video) are substituted (escaped)",
        "https://coves.social/img/{preset}/plain/{did}/{cid}",
    ),
    Var(
        "FEED_SNAPSHOT_SIZE",
        "feed_snapshot_size",
        _int(50, 100_000),
        1000,
        "how many ranked items one hot/top paging session can reach",
        "1000",
    ),
    Var(
        "ACCESS_LOG_ENABLED",
        "access_log_enabled",
        _bool,
        True,
        "write one structured access-log line per request (logger coves.access)",
        "true",
    ),
    Var(
        "ACCESS_LOG_SAMPLE_RATE",
        "access_log_sample_rate",
        _fraction,
        1.0,
        "share of requests below 500 that get an access-log line (5xx are always logged)",
        "0.1",
    ),
    Var(
        "DB_SLOW_QUERY_MS",
        "db_slow_query_ms",
        _int(0, 3_600_000),
        500,
        "log a warning for any query slower than this (milliseconds); 0 turns the log off",
        "250",
    ),
    Var(
        "PDS_HEALTH_INTERVAL_SECONDS",
        "pds_health_interval_seconds",
        _float(0.0),
        30.0,
        "how often the PDS probe calls the instance PDS's _health; 0 turns the probe off",
        "30",
    ),
    Var(
        "PDS_HEALTH_TIMEOUT_SECONDS",
        "pds_health_timeout_seconds",
        _float(0.1),
        5.0,
        "longest one PDS health check may take before it counts as failed",
        "5",
    ),
    Var(
        "BACKUP_DIR",
        "backup_dir",
        _path,
        None,
        "where coves backup writes dumps; defaults to <COVES_DATA_DIR>/backups",
        "/var/backups/coves",
    ),
    Var(
        "BACKUP_RETENTION_DAYS",
        "backup_retention_days",
        _int(1, 36_500),
        30,
        "coves backup deletes its own dumps older than this many days",
        "30",
    ),
    Var(
        "BACKUP_POST_COMMAND",
        "backup_post_command",
        _secret,
        None,
        "shell command run after each backup to copy it off the machine "
        "($COVES_BACKUP_FILE, $COVES_BACKUP_MANIFEST); its failure fails the backup",
        'rclone copy "$COVES_BACKUP_FILE" remote:coves/',
        secret=True,
    ),
    Var(
        "PG_BIN_DIR",
        "pg_bin_dir",
        _path,
        None,
        "directory of pg_dump/pg_restore for backups; default: the bundled PostgreSQL 16 "
        "tools, else the newest installed",
        "/usr/lib/postgresql/17/bin",
    ),
    Var(
        "POSTS_PER_HOUR",
        "posts_per_hour",
        _int(1, 100_000),
        20,
        "posts one account may create per rolling hour, all communities together "
        "(aggregators have their own per-community limit)",
        "20",
    ),
    Var(
        "AGGREGATOR_POSTS_PER_HOUR",
        "aggregator_posts_per_hour",
        _int(1, 100_000),
        10,
        "posts one aggregator may create per rolling hour in one community",
        "10",
    ),
    Var(
        "UNFURL_TIMEOUT_SECONDS",
        "unfurl_timeout_seconds",
        _float(0.1),
        4.0,
        "longest a post waits for a link card (page, oEmbed or thumbnail fetch)",
        "4",
    ),
    Var(
        "FEED_SNAPSHOT_TTL_SECONDS",
        "feed_snapshot_ttl_seconds",
        _float(1.0),
        3600.0,
        "how long a hot/top paging session's cursor stays valid",
        "3600",
    ),
    Var(
        "FEED_SNAPSHOT_MAX_ROWS",
        "feed_snapshot_max_rows",
        _int(100),
        20_000,
        "most stored listing snapshots; beyond it the oldest go first (their cursors expire)",
        "20000",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The effective configuration. Immutable: parse once, pass everywhere."""

    env: Env = "development"
    host: str = "127.0.0.1"
    port: int = 8081
    data_dir: Path = Path(".coves")
    database_url: Secret | None = None
    workers: int | None = None
    role: str = "all"
    ingest_db_pool_size: int = 4
    db_pool_size: int = 10
    db_statement_timeout_ms: int = 10_000
    db_migrate_on_start: bool = True
    log_level: str = "info"
    log_format: str = "auto"
    instance_did: str = "did:web:localhost"
    instance_domain: str = "localhost"
    instance_signing_key: Secret | None = None
    appview_service_id: str = "coves_appview"
    appview_public_url: str = "https://localhost"
    pds_url: str = _DEFAULT_PDS_URL
    pds_admin_password: Secret | None = None
    community_creators: tuple[str, ...] = ()
    community_creates_per_day: int = 5
    community_refresh_enabled: bool = True
    community_refresh_ahead_seconds: float = 1800.0
    cursor_secret: Secret = field(default_factory=lambda: Secret(DEV_CURSOR_SECRET))
    encryption_key: Secret = field(default_factory=lambda: Secret(DEV_ENCRYPTION_KEY))
    encryption_old_keys: tuple[Secret, ...] = ()
    auth_skip_verify: bool = False
    skip_did_web_verification: bool = False
    allow_private_network_fetch: bool = False
    dev_handle_domains: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ("*",)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_request_body_bytes: int = 1_048_576
    rate_limit_general: int = 100
    rate_limit_comments: int = 20
    rate_limit_sync_seconds: float = 1.0
    rate_limit_user_writes: int = 60
    rate_limit_search: int = 30
    rate_limit_api_key: int = 600
    response_cache_seconds: float = 1.0
    viewer_cache_seconds: float = 1.0
    read_cache_seconds: float = 2.0
    switch_interval_seconds: float = 0.0
    gc_thresholds: tuple[int, ...] = (50_000, 20, 100)
    gc_freeze: bool = True
    shutdown_grace_seconds: float = 10.0
    admission_max_concurrency: int = 32
    admission_max_queue: int = 512
    admission_queue_timeout_ms: int = 500
    admission_max_loop_lag_ms: int = 50
    admission_retry_after_seconds: int = 1
    plc_url: str = "https://plc.directory"
    identity_cache_ttl_seconds: int = 86_400
    identity_negative_ttl_seconds: int = 300
    service_auth_max_lifetime_seconds: int = 300
    oauth_issuers: tuple[str, ...] = ()
    oauth_seal_secret: Secret = field(default_factory=lambda: Secret(DEV_OAUTH_SEAL_SECRET))
    oauth_seal_old_secrets: tuple[Secret, ...] = ()
    oauth_client_private_key: Secret | None = None
    oauth_client_old_keys: tuple[Secret, ...] = ()
    oauth_web_redirects: tuple[str, ...] = ()
    oauth_mobile_redirects: tuple[str, ...] = ("social.coves:/callback",)
    jetstream_url: str = DEFAULT_JETSTREAM_URL
    jetstream_enabled: bool = True
    jetstream_rewind_seconds: float = 5.0
    jetstream_batch_size: int = 500
    jetstream_batch_ms: int = 200
    jetstream_idle_timeout_seconds: float = 90.0
    jetstream_ping_interval_seconds: float = 30.0
    jetstream_pong_timeout_seconds: float = 10.0
    jetstream_connect_timeout_seconds: float = 10.0
    jetstream_max_message_bytes: int = 8 * 1024 * 1024
    jetstream_breaker_threshold: int = 5
    jetstream_breaker_cooldown_seconds: float = 60.0
    firehose_urls: tuple[str, ...] = ()
    firehose_verify: bool = False
    firehose_idle_timeout_seconds: float = 600.0
    blob_url_template: str = "{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"
    feed_snapshot_size: int = 1000
    access_log_enabled: bool = True
    access_log_sample_rate: float = 1.0
    db_slow_query_ms: int = 500
    pds_health_interval_seconds: float = 30.0
    pds_health_timeout_seconds: float = 5.0
    backup_dir: Path | None = None
    backup_retention_days: int = 30
    backup_post_command: Secret | None = None
    pg_bin_dir: Path | None = None
    posts_per_hour: int = 20
    aggregator_posts_per_hour: int = 10
    unfurl_timeout_seconds: float = 4.0
    feed_snapshot_ttl_seconds: float = 3600.0
    feed_snapshot_max_rows: int = 20_000
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def service_did_with_fragment(self) -> str:
        return f"{self.instance_did}#{self.appview_service_id}"

    @property
    def effective_backup_dir(self) -> Path:
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"

    @property
    def effective_log_format(self) -> str:
        if self.log_format != "auto":
            return self.log_format
        return "json" if self.is_production else "console"

    def secret_box(self) -> SecretBox:
        """The box that seals with ENCRYPTION_KEY and opens with it or ENCRYPTION_OLD_KEYS."""
        return SecretBox(self.encryption_key, old_keys=self.encryption_old_keys)

    def redacted(self) -> dict[str, str]:
        """Every variable with its effective value, secrets masked."""
        out: dict[str, str] = {}
        for var in VARS:
            value = getattr(self, var.attr)
            if value is None or (var.secret and value == ()):
                out[var.name] = "(unset)"
            elif var.secret:
                out[var.name] = "(set, redacted)"
            elif isinstance(value, tuple):
                out[var.name] = ",".join(str(v) for v in value)
            else:
                out[var.name] = str(value)
        return out

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")
) -> Settings:
    """Parse the environment (and an optional .env file) into Settings.

    Values already in the environment win over the .env file, the usual
    convention, so an operator can override a checked-in file per run.
    """
    env: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        from dotenv import dotenv_values

        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    problems: list[str] = []
    values: dict[str, Any] = {}
    for var in VARS:
        raw = env.get(var.name)
        if raw is None or (raw.strip() == "" and var.default is None):
            values[var.attr] = var.default
            continue
        try:
            values[var.attr] = var.parse(raw)
        except ValueError as exc:
            shown = "(redacted)" if var.secret else repr(raw)
            problems.append(f"{var.name}={shown} {exc}; example: {var.name}={var.example}")
    if problems:
        raise ConfigError(problems)
    return _finish(values)


def _finish(values: dict[str, Any]) -> Settings:
    problems: list[str] = []
    warnings: list[str] = []
    production = values["env"] == "production"

    did = values["instance_did"]
    if values["instance_domain"] is None:
        if did.startswith("did:web:"):
            values["instance_domain"] = did.removeprefix("did:web:").replace("%3A", ":").lower()
        else:
            problems.append(
                "INSTANCE_DOMAIN is required when INSTANCE_DID is not a did:web; "
                "example: INSTANCE_DOMAIN=coves.social"
            )
            values["instance_domain"] = ""
    if values["appview_public_url"] is None:
        values["appview_public_url"] = f"https://{values['instance_domain']}"

    if values["role"] != "all" and values["database_url"] is None:
        problems.append(
            f"COVES_ROLE={values['role']} runs part of a deployment whose processes share "
            "one PostgreSQL: set DATABASE_URL (the embedded one is for COVES_ROLE=all); "
            "example: DATABASE_URL=postgresql://coves:pw@db:5432/coves"
        )

    shortcuts = [
        name
        for name, attr in (
            ("AUTH_SKIP_VERIFY", "auth_skip_verify"),
            ("SKIP_DID_WEB_VERIFICATION", "skip_did_web_verification"),
            ("ALLOW_PRIVATE_NETWORK_FETCH", "allow_private_network_fetch"),
        )
        if values[attr]
    ]
    if production:
        for name in shortcuts:
            problems.append(f"{name}=true is a development shortcut and is refused in production")
        if values["dev_handle_domains"]:
            problems.append(
                "DEV_HANDLE_DOMAINS is a development shortcut (handles trusted to the instance "
                "PDS's word instead of DNS or HTTPS) and is refused in production"
            )
        problems.extend(_production_secret_problems(values))
        problems.extend(_production_oauth_problems(values))
        problems.extend(_production_endpoint_problems(values))
        if values["database_url"] is None:
            warnings.append("no DATABASE_URL: production is using the embedded PostgreSQL")
        if did == "did:web:localhost":
            problems.append(
                "INSTANCE_DID is the development default; "
                "example: INSTANCE_DID=did:web:coves.social"
            )
        else:
            problems.extend(_production_identity_problems(values))
    else:
        for name in shortcuts:
            warnings.append(f"{name}=true: development shortcut active")
        if values["dev_handle_domains"]:
            warnings.append(
                "DEV_HANDLE_DOMAINS: handles under "
                + ", ".join(values["dev_handle_domains"])
                + " are resolved by the instance PDS (development shortcut)"
            )
        if values["cursor_secret"] is None:
            values["cursor_secret"] = Secret(DEV_CURSOR_SECRET)
            warnings.append("CURSOR_SECRET unset: using the development default")
        if values["encryption_key"] is None:
            values["encryption_key"] = Secret(DEV_ENCRYPTION_KEY)
            warnings.append("ENCRYPTION_KEY unset: using the development default")
        if values["oauth_seal_secret"] is None:
            values["oauth_seal_secret"] = Secret(DEV_OAUTH_SEAL_SECRET)
            warnings.append("OAUTH_SEAL_SECRET unset: using the development default")
    if problems:
        raise ConfigError(problems)
    values["warnings"] = tuple(warnings)
    return Settings(**values)


# Spellings of "fill me in" that deploy examples and tutorials use.
_PLACEHOLDER = re.compile(
    r"change[\W_]*me|replace[\W_]*me|placeholder|<[^>]*>|your[\W_]*(secret|key|password)",
    re.IGNORECASE,
)
MIN_SECRET_BYTES = 32
# Names that can never be a public identity: loopback and RFC 2606/6761 reserved names.
_NON_PUBLIC_SUFFIXES = (".localhost", ".example", ".invalid", ".test", ".local", ".internal")
_NON_PUBLIC_NAMES = frozenset({"localhost", "example.com", "example.net", "example.org"})


def _production_secret_problems(values: dict[str, Any]) -> list[str]:
    """Secrets must be present, not a development default (compared as bytes), not a
    placeholder, and long enough to be one."""
    problems: list[str] = []
    cursor: Secret | None = values["cursor_secret"]
    if cursor is None:
        problems.append("CURSOR_SECRET must be set in production; example: CURSOR_SECRET=<random>")
    elif cursor.reveal() == DEV_CURSOR_SECRET:
        problems.append("CURSOR_SECRET is the development default and is refused in production")
    elif _PLACEHOLDER.search(cursor.reveal()):
        problems.append("CURSOR_SECRET is a placeholder; generate one: openssl rand -base64 32")
    elif len(cursor.reveal().encode()) < MIN_SECRET_BYTES or len(set(cursor.reveal())) < 8:
        problems.append(
            f"CURSOR_SECRET is too weak: use at least {MIN_SECRET_BYTES} random bytes, "
            "e.g. openssl rand -base64 32"
        )
    dev_key = base64.b64decode(DEV_ENCRYPTION_KEY)
    key: Secret | None = values["encryption_key"]
    if key is None:
        problems.append(
            "ENCRYPTION_KEY must be set in production; example: ENCRYPTION_KEY=<base64 of 32 bytes>"
        )
    elif base64.b64decode(key.reveal()) == dev_key:
        problems.append("ENCRYPTION_KEY is the development default and is refused in production")
    elif len(set(base64.b64decode(key.reveal()))) < 8:
        problems.append("ENCRYPTION_KEY is not random; generate one: openssl rand -base64 32")
    if any(base64.b64decode(old.reveal()) == dev_key for old in values["encryption_old_keys"]):
        problems.append(
            "ENCRYPTION_OLD_KEYS contains the development key, which is refused in production; "
            "re-seal development data with `coves rotate-key` outside production first"
        )
    database_url: Secret | None = values["database_url"]
    if database_url is not None and _PLACEHOLDER.search(database_url.reveal()):
        problems.append("DATABASE_URL still contains a placeholder (e.g. CHANGE_ME)")
    return problems


def _production_oauth_problems(values: dict[str, Any]) -> list[str]:
    """Signing in needs a real seal secret, the confidential client's key, https, and
    redirect targets a browser or app outside this machine can be sent to."""
    problems: list[str] = []
    # Compared as bytes: base64 has more than one spelling of the same 32 bytes. (Its
    # length, exactly 32 bytes, is checked by the parser in every environment.)
    dev_seal = base64.b64decode(DEV_OAUTH_SEAL_SECRET)
    seal: Secret | None = values["oauth_seal_secret"]
    if seal is None:
        problems.append(
            "OAUTH_SEAL_SECRET must be set in production; "
            "example: OAUTH_SEAL_SECRET=<base64 of 32 bytes>"
        )
    elif base64.b64decode(seal.reveal()) == dev_seal:
        problems.append("OAUTH_SEAL_SECRET is the development default and is refused in production")
    elif len(set(base64.b64decode(seal.reveal()))) < 8:
        problems.append("OAUTH_SEAL_SECRET is not random; generate one: openssl rand -base64 32")
    if any(base64.b64decode(old.reveal()) == dev_seal for old in values["oauth_seal_old_secrets"]):
        problems.append(
            "OAUTH_SEAL_OLD_SECRETS contains the development secret, which is refused in "
            "production: anyone could forge session tokens with it"
        )
    for name in ("OAUTH_WEB_REDIRECTS", "OAUTH_MOBILE_REDIRECTS"):
        for target in values[name.lower()]:
            why = _web_target_problem(target)
            if why is not None:
                problems.append(
                    f"{name} target {target} {why}: refused in production; "
                    "example: https://coves.social/api/auth/callback (or an app scheme such "
                    "as social.coves:/callback for mobile)"
                )
    for issuer in values["oauth_issuers"]:
        why = _web_target_problem(issuer)
        if why is not None:
            problems.append(
                f"OAUTH_ISSUERS entry {issuer} {why}: refused in production; "
                "example: OAUTH_ISSUERS=https://bsky.social"
            )
    if values["oauth_client_private_key"] is None:
        problems.append(
            "OAUTH_CLIENT_PRIVATE_KEY must be set in production (the confidential OAuth "
            "client's key); make one with `coves oauth-keygen`"
        )
    if not values["appview_public_url"].startswith("https://"):
        problems.append("APPVIEW_PUBLIC_URL must be https in production (OAuth redirects)")
    return problems


def _web_target_problem(url: str) -> str | None:
    """What makes an http(s) URL a development one (cleartext, or a host nobody else
    can reach); None for a public https URL or a non-web URI (an app's own scheme)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if parts.scheme != "https":
        return "is not https"
    if _non_public_host(parts.hostname or ""):
        return f"points at {parts.hostname}, which is not a public host"
    return None


def _production_endpoint_problems(values: dict[str, Any]) -> list[str]:
    """Services a production instance names to others or trusts for identity: the
    instance PDS (published in the instance's DID document as its PDS endpoint, and
    where community credentials are sent) and the PLC directory."""
    problems: list[str] = []
    pds: str = values["pds_url"]
    if pds == _DEFAULT_PDS_URL:
        problems.append(
            f"PDS_URL must be set in production (the default {pds} is a development PDS); "
            "example: PDS_URL=https://pds.coves.social"
        )
    else:
        why = _web_target_problem(pds)
        if why is not None:
            problems.append(
                f"PDS_URL {pds} {why}: refused in production (it is published in the "
                "instance's DID document and community passwords are sent to it); "
                "example: PDS_URL=https://pds.coves.social"
            )
    plc: str = values["plc_url"]
    why = _web_target_problem(plc)
    if why is not None:
        problems.append(
            f"PLC_DIRECTORY_URL {plc} {why}: a development directory, refused in production "
            "(every did:plc is resolved there); example: PLC_DIRECTORY_URL=https://plc.directory"
        )
    return problems


def _non_public_host(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host in _NON_PUBLIC_NAMES or host.endswith(_NON_PUBLIC_SUFFIXES) or "." not in host
    return not addr.is_global


def _production_identity_problems(values: dict[str, Any]) -> list[str]:
    """A production instance is named by a public domain: its DID document and service
    endpoint are fetched by other servers, which cannot reach localhost or a placeholder."""
    problems: list[str] = []
    did: str = values["instance_did"]
    if did.startswith("did:web:"):
        host = did.removeprefix("did:web:").replace("%3A", ":").replace("%3a", ":")
        if _non_public_host(host.split(":", 1)[0]):
            problems.append(
                f"INSTANCE_DID {did} is not a public domain; "
                "example: INSTANCE_DID=did:web:coves.social"
            )
    domain: str = values["instance_domain"]
    if domain and _non_public_host(domain.split(":", 1)[0]):
        problems.append(
            f"INSTANCE_DOMAIN {domain} is not a public domain; "
            "example: INSTANCE_DOMAIN=coves.social"
        )
    public = urlsplit(values["appview_public_url"]).hostname or ""
    if _non_public_host(public):
        problems.append(
            f"APPVIEW_PUBLIC_URL host {public} is not a public domain; "
            "example: APPVIEW_PUBLIC_URL=https://coves.social"
        )
    return problems


def test_settings(**overrides: Any) -> Settings:
    """Settings for tests: development mode, no network-bound children.

    The response micro-caches are off: most tests read right after writing and
    check the handler's answer, not a copy up to a second old. The tests of
    the caches turn them on (``response_cache_seconds``, ``viewer_cache_seconds``).
    Admission control is off too: a test firing many concurrent requests on a
    slow machine must not see 503s; its own tests turn it on.
    """
    base = Settings(
        jetstream_enabled=False,
        pds_health_interval_seconds=0.0,
        community_refresh_enabled=False,
        allow_private_network_fetch=True,
        response_cache_seconds=0.0,
        viewer_cache_seconds=0.0,
        admission_max_concurrency=0,
    )
    return base.replace(**overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]
