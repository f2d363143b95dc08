"""``scripts/demo``: bring up a local Coves with a real PDS and seeded content.

    scripts/demo                 # run until Ctrl-C (data under ./.demo, fresh each time)
    scripts/demo --port 8090     # Coves on another port
    scripts/demo --check         # bring it up, verify what a newcomer would see, stop

Steps: the PLC directory and Bluesky's reference PDS start on loopback (the
pinned versions the tests run, scripts/install-test-pds); Coves starts
(``coves serve``, its own embedded PostgreSQL) reading that PDS's firehose;
people and their profiles are made on the PDS; communities and posts with
pictures and link cards are made through Coves (community.create,
post.uploadImage, post.create), as the apps make them; comment threads, votes
and subscriptions go into the people's own repositories on the PDS; the command
waits until Coves has indexed all of it, then prints where to look and how to
sign in.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import trio

from demo.check import check
from demo.content import Seeded
from demo.seed import seed
from demo.wait import wait_indexed
from nurseries.workers import worker_command
from tests.support.pds import TestPds, start_test_pds

INSTANCE_DOMAIN = "coves.test"  # the PDS's handle domain: community handles c-<name>.coves.test
INSTANCE_DID = f"did:web:{INSTANCE_DOMAIN}"
PASSWORD = "demo-password"  # noqa: S105 - every seeded person's, on a local toy instance


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def coves_env(root: Path, pds: TestPds, port: int) -> dict[str, str]:
    """Coves in development mode, reading the local PDS's firehose and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVES_", "DATABASE_"))}
    pds_port = pds.url.rsplit(":", 1)[1]
    env.update(
        {
            "COVES_ENV": "development",
            "COVES_HOST": "127.0.0.1",
            "COVES_PORT": str(port),
            "COVES_DATA_DIR": str(root / "data"),
            "INSTANCE_DID": INSTANCE_DID,
            "INSTANCE_DOMAIN": INSTANCE_DOMAIN,
            "APPVIEW_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PDS_URL": pds.url,
            "PDS_ADMIN_PASSWORD": pds.admin_password,
            "PLC_DIRECTORY_URL": pds.plc_url,
            "FIREHOSE_URL": f"ws://localhost:{pds_port}",
            "JETSTREAM_ENABLED": "false",  # no network: the local PDS is the whole world
            "ALLOW_PRIVATE_NETWORK_FETCH": "true",  # its PDS and PLC are on loopback
            "SKIP_DID_WEB_VERIFICATION": "true",  # coves.test has no public did.json
            # Nothing resolves *.coves.test: ask the PDS, so everyone's real handle shows.
            "DEV_HANDLE_DOMAINS": f".{INSTANCE_DOMAIN}",
            "OAUTH_MOBILE_REDIRECTS": "social.coves:/callback",
            "LOG_FORMAT": "console",
        }
    )
    return env


def start_coves(root: Path, pds: TestPds, port: int) -> subprocess.Popen[bytes]:
    log = open(root / "coves.log", "wb")  # noqa: SIM115 - kept by the child
    proc = subprocess.Popen(
        [*worker_command(), "serve"],  # the installed package, whatever is in cwd
        env=coves_env(root, pds, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (root / "coves.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"coves exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(base + "/xrpc/_health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("coves did not become healthy in 120 s; see .demo/coves.log")


def instructions(base: str, pds: TestPds, seeded: Seeded) -> str:
    alice = next(h for h in seeded.passwords if h.startswith("alice."))
    did = seeded.dids[alice]
    return f"""
Coves is running at {base} with a real PDS at {pds.url} (PLC {pds.plc_url}).

  Communities: {", ".join(f"c-{name}.{INSTANCE_DOMAIN}" for name in seeded.communities)}
  People:      {", ".join(seeded.passwords)} (password: {PASSWORD})
  Seeded:      {len(seeded.posts)} posts ({seeded.images} pictures, {seeded.links} link cards),
               {seeded.comments} comments, {seeded.votes} votes

Look around (the API the apps use):
  curl '{base}/xrpc/social.coves.community.list'
  curl '{base}/xrpc/social.coves.feed.getDiscover?sort=hot'
  curl '{base}/xrpc/social.coves.community.comment.getComments?post={seeded.posts[0]}'
  curl '{base}/xrpc/social.coves.actor.getProfile?actor={did}'

Sign in (open in a browser; the PDS asks for {alice}'s password, then hands
the app a session token in the redirect):
  {base}/oauth/mobile/login?handle={did}&redirect_uri=social.coves:/callback
Then write through Coves with it, for example a comment:
  curl -X POST {base}/xrpc/social.coves.community.comment.create \\
    -H 'Authorization: Bearer <token>' -H 'Content-Type: application/json' \\
    -d '{{"reply": {{"root": {{"uri": "<post uri>", "cid": "<post cid>"}},
          "parent": {{"uri": "<post uri>", "cid": "<post cid>"}}}}, "content": "Hello!"}}'
or create a community (its account is made on the PDS, handle c-<name>.{INSTANCE_DOMAIN}):
  curl -X POST {base}/xrpc/social.coves.community.create \\
    -H 'Authorization: Bearer <token>' -H 'Content-Type: application/json' \\
    -d '{{"name": "mine", "displayName": "My community"}}'
or write records to your own repository on the PDS; Coves indexes them within a second.

Logs: {pds.root.parent}/coves.log, {pds.pds_log}. Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="where the data goes")
    parser.add_argument("--port", type=int, default=8081, help="Coves' port (default 8081)")
    parser.add_argument(
        "--check", action="store_true", help="verify the running instance as a newcomer, then stop"
    )
    args = parser.parse_args(argv)
    port = args.port if _port_free(args.port) else _free_port()
    if port != args.port:
        print(f"port {args.port} is taken; Coves uses {port}")
    root = args.dir.resolve()
    if root.exists():
        shutil.rmtree(root)  # a fresh instance each time: the PDS and Coves start empty
    root.mkdir(parents=True)
    root.chmod(0o755)  # the embedded PostgreSQL may run as another user (as root: pgserver)
    print("starting the PLC directory and the reference PDS...")
    pds = start_test_pds(root / "pds")
    coves: subprocess.Popen[bytes] | None = None
    try:
        print("starting Coves...")
        coves = start_coves(root, pds, port)
        base = f"http://127.0.0.1:{port}"
        print("seeding: people on the PDS, communities and posts through Coves...")
        seeded = trio.run(seed, pds, base, INSTANCE_DID, PASSWORD)
        print("waiting for Coves to index it from the firehose...")
        trio.run(wait_indexed, base, seeded)
        print(instructions(base, pds, seeded))
        if args.check:
            trio.run(check, base, pds, seeded, PASSWORD)
            print("check: everything a newcomer should see is there")
            return 0
        try:
            coves.wait()
            print(f"coves exited with {coves.returncode}; see {root / 'coves.log'}")
            return 1
        except KeyboardInterrupt:
            print("\nstopping...")
            return 0
    finally:
        if coves is not None and coves.poll() is None:
            coves.send_signal(signal.SIGTERM)
            try:
                coves.wait(timeout=60)
            except subprocess.TimeoutExpired:
                coves.kill()
        pds.stop()


if __name__ == "__main__":
    raise SystemExit(main())
