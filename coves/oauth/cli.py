"""``coves oauth-keygen``: a fresh key for the confidential OAuth client."""

from __future__ import annotations

import argparse

from coves.atproto.keys import PrivateKey, p256_private_multibase
from coves.cli import EXTRA_COMMANDS
from coves.config import Settings
from coves.oauth.jose import SigningKey


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print a new P-256 private key for OAUTH_CLIENT_PRIVATE_KEY, and its key id. "
        "Keep the key secret; its public half is served at /oauth-client-keys.json."
    )


def _run(settings: Settings, args: argparse.Namespace) -> int:
    key = PrivateKey.generate("p256")
    kid = SigningKey(key.key).jkt[:16]
    print(f"OAUTH_CLIENT_PRIVATE_KEY={p256_private_multibase(key)}")
    print(f"# its kid (published at /oauth-client-keys.json): {kid}")
    return 0


EXTRA_COMMANDS["oauth-keygen"] = ("print a new OAuth client key", _configure, _run)
