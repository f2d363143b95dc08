"""getComments over real HTTP on a generated 2 000-comment thread.

``coves serve`` (with its embedded PostgreSQL) runs on core 0 and the
closed-loop load generator on core 1, as in the foundation benchmark; the
baseline is ``/xrpc/_health`` on the same server in the same run. Three
getComments loads:

- one popular thread (every client asks for the same page: the shared build
  serves it),
- the same thread's ``new`` sort, and
- "cold": 2 000 distinct parameter combinations (limit x depth) cycled, so
  nearly every request builds its thread from the database.

Anonymous only: the served app accepts no test credentials; the viewer path
is measured in process by ``bench/comments_thread.py``.

    .venv/bin/python -m bench.comments_http --connections 100 --duration 10
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from bench.gen_thread import generate_thread
from bench.loadgen import run_load, summary
from bench.servers import CLIENT_CPU, coves_server
from coves.db.embedded import EmbeddedPostgres

NSID = "social.coves.community.comment.getComments"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--comments", type=int, default=2000)
    args = parser.parse_args()
    kwargs = {
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "cpu": CLIENT_CPU,
    }
    print(f"cores: {os.cpu_count()}  connections: {args.connections}  duration: {args.duration}s")
    with tempfile.TemporaryDirectory(prefix="coves-bench-comments-") as scratch:
        data_dir = Path(scratch)
        with coves_server(data_dir=data_dir) as base:
            with psycopg.connect(EmbeddedPostgres(data_dir).conninfo(), autocommit=True) as conn:
                info = generate_thread(conn, comments=args.comments)
            print(
                f"thread: {info.comments} comments, {info.top_level} top-level, "
                f"max depth {info.max_depth}"
            )

            def url(**params: object) -> str:
                return f"{base}/xrpc/{NSID}?" + urlencode({"post": info.post_uri, **params})

            cold = [url(limit=limit, depth=depth) for limit in range(31, 71) for depth in range(50)]
            results = [
                run_load("coves /xrpc/_health", [f"{base}/xrpc/_health"], **kwargs),  # type: ignore[arg-type]
                run_load("getComments hot (one thread)", [url()], **kwargs),  # type: ignore[arg-type]
                run_load("getComments new (one thread)", [url(sort="new")], **kwargs),  # type: ignore[arg-type]
                run_load("getComments cold builds", cold, **kwargs),  # type: ignore[arg-type]
            ]
    print(summary(results, results[0]))


if __name__ == "__main__":
    main()
