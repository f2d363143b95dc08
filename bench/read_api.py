"""Read API throughput and latency next to a bare Hypercorn-trio baseline.

In one run, at ``--connections`` concurrent keep-alive clients (load
generator pinned to core 1, servers to core 0): the bare Hypercorn-trio
hello app, then getTimeline (viewer subscribed to 50 communities),
getCommunity hot (cycling the 10 busiest communities), getDiscover hot and,
when the endpoint exists on this branch, getComments on a 2 000-comment
thread, searchPosts for a topic word and post.get of 25 URIs. Rate limits are
lifted for the run (``RATE_LIMIT_GENERAL``).

    .venv/bin/python -m bench.gen_readdb --scale 1            # once, ~5-10 min
    .venv/bin/python -m bench.read_api --connections 100 --duration 15
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from bench import wrk
from bench.gen_readdb import DEFAULT_DIR, META_FILE
from bench.loadgen import LoadResult, run_load, summary
from bench.servers import CLIENT_CPU, ROOT, _pin, _stop, _wait, free_port, hello_server


def start_read_server(
    data_dir: Path, log_level: str = "warning"
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "RATE_LIMIT_GENERAL": "1000000000",
        "RATE_LIMIT_COMMENTS": "1000000000",
        "RATE_LIMIT_SEARCH": "1000000000",
        # info turns the access log on (a line per request, as in production by default).
        "LOG_LEVEL": log_level,
        "JETSTREAM_ENABLED": "false",
    }
    log = open(data_dir / "read-server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.read_server", "--data-dir", str(data_dir),
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    _pin(proc.pid)  # before it starts PostgreSQL, which inherits the affinity
    base = f"http://127.0.0.1:{port}"
    _wait(f"{base}/xrpc/_health", proc, timeout=300)
    return proc, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk when installed (auto), else bench/loadgen.py",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        help="the server's LOG_LEVEL; info writes the access log (ACCESS_LOG_SAMPLE_RATE applies)",
    )
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and wrk.available())
    drive = wrk.run_wrk if use_wrk else run_load
    load = {
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "cpu": CLIENT_CPU,
    }
    print(
        f"nproc: {os.cpu_count()}  connections: {args.connections}  duration: {args.duration}s"
        f"  client: {'wrk' if use_wrk else 'bench/loadgen.py'}"
    )
    meta = json.loads((args.data_dir / META_FILE).read_text())
    proc, base = start_read_server(args.data_dir, args.log_level)
    results: list[LoadResult] = []
    try:
        with hello_server() as url:
            baseline = drive("bare hypercorn-trio hello", [url], **load)  # type: ignore[arg-type]
        results.append(baseline)
        auth = {"Authorization": f"Bearer bench:{meta['viewer']}"}
        x = f"{base}/xrpc"
        communities = meta["busiest_communities"]
        cases: list[tuple[str, list[str], dict[str, str] | None]] = [
            ("getTimeline hot (50 subs)", [f"{x}/social.coves.feed.getTimeline"], auth),
            (
                "getCommunity hot (10 busiest)",
                [f"{x}/social.coves.feed.getCommunity?community={c}" for c in communities],
                None,
            ),
            ("getDiscover hot", [f"{x}/social.coves.feed.getDiscover"], None),
        ]
        thread = meta["thread_post"]
        comments = f"{x}/social.coves.community.comment.getComments?post={thread}"
        if httpx.get(comments, timeout=30).status_code != 501:
            cases.append(("getComments (2000-comment thread)", [comments], None))
        else:
            print("getComments: not on this branch (501), skipped")
        search = f"{x}/social.coves.feed.searchPosts?q=rust"
        if httpx.get(search, timeout=30).status_code != 501:
            cases.append(("searchPosts 'rust' (relevance)", [search], None))
        else:
            print("searchPosts: not on this branch (501), skipped")
        discover = httpx.get(f"{x}/social.coves.feed.getDiscover?limit=25", timeout=30).json()
        uris = "&".join(f"uris={item['post']['uri']}" for item in discover["feed"])
        cases.append(("post.get (25 uris)", [f"{x}/social.coves.community.post.get?{uris}"], auth))
        for label, urls, headers in cases:
            check = httpx.get(urls[0], headers=headers or {}, timeout=30)
            feed = check.json().get("feed")
            size = len(feed) if isinstance(feed, list) else "-"
            print(f"{label}: status {check.status_code}, items {size}, {len(check.content)} B")
            results.append(drive(label, urls, headers=headers, **load))  # type: ignore[arg-type]
    finally:
        _stop(proc)
    print(summary(results, results[0]))
    floor_ok = all(r.percentile(95) < 50 and r.rps >= 0.5 * results[0].rps for r in results[1:])
    print("floors (p95 < 50 ms, >= 0.5x baseline rps):", "met" if floor_ok else "NOT met")


if __name__ == "__main__":
    main()
