"""Foundation benchmark: Coves' /xrpc/_health next to a bare Hypercorn-trio app.

Both servers run on core 0 and the load generator on core 1, one after the
other in the same run, so the ratio is meaningful on a noisy machine.
``_health`` includes a database round trip (``SELECT 1``) and the whole
dispatcher path, so the ratio is the cost of Quart plus our middleware plus
one pool checkout.

    .venv/bin/python -m bench.http_baseline --connections 100 --duration 15
"""

from __future__ import annotations

import argparse
import os

from bench.loadgen import run_load, summary
from bench.servers import CLIENT_CPU, coves_server, hello_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    kwargs = {
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "cpu": CLIENT_CPU,
    }
    print(f"cores: {os.cpu_count()}  connections: {args.connections}  duration: {args.duration}s")
    with hello_server() as url:
        baseline = run_load("bare hypercorn-trio hello", [url], **kwargs)  # type: ignore[arg-type]
    with coves_server() as base:
        health = run_load("coves /xrpc/_health", [f"{base}/xrpc/_health"], **kwargs)  # type: ignore[arg-type]
    print(summary([baseline, health], baseline))


if __name__ == "__main__":
    main()
