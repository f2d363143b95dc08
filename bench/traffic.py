"""Realistic traffic: sessions of distinct viewers and anonymous readers, with ingestion.

One run, in this order, every process pinned with ``taskset``:

1. set-up (once per database): bench viewers with subscriptions are added
   (``bench/traffic_world.py``) and targets are sampled for the stream feed;
2. baseline: the bare Hypercorn-trio hello app with the same number of
   worker processes as Coves, on the server cores, driven closed-loop by the
   same client with the same number of users;
3. Coves: the real binary (``coves serve [--workers N]``) on the bench
   database, on the server cores, cold (fresh processes, empty caches);
   a PLC-directory fixture serving the viewers' keys and a live Jetstream
   feed at ``--ingest-rate`` events/s (indexed by Coves' real consumer) run
   on the client cores, beside the load generator;
4. phases: a short warm-up (not reported), saturation (closed loop,
   ``--saturation-users`` users without think time), then a think-time
   ramp (``--stages`` users, exponential think time of mean ``--think``).

Reported per phase: throughput (and, for saturation, the ratio to the
baseline), p50/p95/p99 per endpoint of the requests served (200), the
share shed (503), the server's CPU split into Coves' processes and
PostgreSQL's (cores used), Python's GC time (from ``coves_gc_seconds_total``),
the ingestion lag (now minus the consumer's committed cursor, sampled each
second) and the client's own CPU. From the ramp: the largest number of
think-time users held at p95 < 100 ms (and < 500 ms).

Pinning on a 2-core machine: ``--server-cpus 0 --client-cpus 1`` (the
default) puts Coves, its PostgreSQL and the hello baseline on core 0 and the
load generator, the PLC fixture and the Jetstream feed on core 1. With
``--workers 2`` the server needs both cores (``--server-cpus 0,1``) and the
client then shares core 1 with one of them: the run prints the client's
CPU so the steal is visible.

    .venv/bin/python -m bench.gen_readdb --scale 0.3 --data-dir /tmp/coves-readdb   # once
    .venv/bin/python -m bench.traffic --data-dir /tmp/coves-readdb --workers 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.gen_readdb import DEFAULT_DIR, META_FILE
from bench.servers import ROOT, _stop, _wait, free_port
from bench.traffic_world import TARGETS_FILE, sample_targets, setup_viewers
from coves.db.embedded import EmbeddedPostgres, stop_blocking


def taskset(cpus: str) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def pin_fallback(pid: int, cpus: str) -> None:
    if cpus and not shutil.which("taskset") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {int(c) for c in cpus.split(",")})


# -- set-up ----------------------------------------------------------------------------
def prepare(data_dir: Path, viewers: int) -> Path:
    meta = json.loads((data_dir / META_FILE).read_text())
    server = EmbeddedPostgres(data_dir, durable=False)
    proc = server.start_blocking()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            added = setup_viewers(conn, viewers)
            if added:
                print(f"set-up: added {added} bench viewers with subscriptions")
            targets = sample_targets(conn, viewers, meta)
    finally:
        stop_blocking(proc)
        server.unlock()  # the data directory's lock: Coves takes it next
    path = data_dir / TARGETS_FILE
    targets.save(path)
    return path


# -- processes -------------------------------------------------------------------------
@contextlib.contextmanager
def process(
    argv: list[str], *, cpus: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [*taskset(cpus), *argv], cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pin_fallback(proc.pid, cpus)
    try:
        yield proc
    finally:
        _stop(proc)
        if log is not None and not isinstance(out, int):
            out.close()


def wait_for_line(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited: {path.read_text()[-2000:]}")
        for line in path.read_text().splitlines():
            if re.search(pattern, line):
                return line
        time.sleep(0.1)
    raise RuntimeError(f"{pattern!r} never appeared in {path}")


# -- sampling --------------------------------------------------------------------------
@dataclass
class CpuSample:
    coves: float
    postgres: float
    at: float


def server_cpu(root_pid: int) -> CpuSample:
    coves = postgres = 0.0
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for proc in procs:
        try:
            times = proc.cpu_times()
            used = times.user + times.system
            if proc.name().startswith("postgres"):
                postgres += used
            else:
                coves += used
        except psutil.NoSuchProcess:
            continue
    return CpuSample(coves, postgres, time.monotonic())


def pids_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


METRIC_LINE = re.compile(r"^(\w+)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$")


def scrape(base: str) -> dict[str, float]:
    """Sum each metric family's samples (labels dropped) from /metrics."""
    totals: dict[str, float] = {}
    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return totals
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if match and match.group(3) != "NaN":
            totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(3))
    return totals


@dataclass
class LagMonitor:
    """Now minus the consumer's committed cursor, once a second (a thread)."""

    conninfo: str
    samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, lag s)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.wait(1.0):
            try:
                if conn is None:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                row = conn.execute(
                    "SELECT time_us FROM ingest_cursor WHERE name = 'jetstream'"
                ).fetchone()
                if row is not None:
                    self.samples.append((time.monotonic(), time.time() - row[0] / 1_000_000))
            except psycopg.Error:
                conn = None

    def window(self, start: float, end: float) -> dict[str, float]:
        values = sorted(lag for at, lag in self.samples if start <= at <= end)
        if not values:
            return {}
        return {
            "p50": round(values[len(values) // 2], 2),
            "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 2),
            "max": round(values[-1], 2),
        }


# -- the run ---------------------------------------------------------------------------
def run_client(
    spec: dict[str, Any], cpus: str, on_stage: Any, log_dir: Path
) -> list[dict[str, Any]]:
    """Run the client; ``on_stage(label, "start"|"done")`` is called at each boundary."""
    spec_path = log_dir / "client-spec.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [*taskset(cpus), sys.executable, "-m", "bench.traffic_client", "--spec", f"@{spec_path}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pin_fallback(proc.pid, cpus)
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        match = re.match(r"stage (.+): (start|done)$", line.strip())
        if match:
            on_stage(match.group(1), match.group(2))
        elif line.strip():
            print(f"  client: {line.rstrip()}")
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"client failed ({proc.returncode})")
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="coves serve --workers N (default: the binary's default)",
    )
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1" if (os.cpu_count() or 1) > 1 else "0")
    parser.add_argument("--viewers", type=int, default=3000)
    parser.add_argument("--signed-in", type=float, default=0.4)
    parser.add_argument("--ingest-rate", type=float, default=1000.0, help="events/s; 0 = none")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--saturation-users", type=int, default=200)
    parser.add_argument("--saturation-seconds", type=float, default=30.0)
    parser.add_argument("--think", type=float, default=2.0, help="mean think time, seconds")
    parser.add_argument("--stages", default="100,200,400,700,1000,1400,2000")
    parser.add_argument("--stage-seconds", type=float, default=30.0)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for coves serve")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()  # fmt: skip

    data_dir = args.data_dir.resolve()
    log_dir = data_dir / "traffic-logs"
    log_dir.mkdir(exist_ok=True)
    workers = args.workers
    print(
        f"nproc {os.cpu_count()}  server cpus {args.server_cpus}  client cpus {args.client_cpus}"
        f"  workers {workers if workers is not None else 'default'}  viewers {args.viewers}"
        f"  signed-in {args.signed_in}  ingest {args.ingest_rate:g} events/s"
    )
    targets = prepare(data_dir, args.viewers)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}

    # 2. Baseline: the bare app, same worker count, same client, same users.
    baseline_rps = None
    if not args.skip_baseline:
        port = free_port()
        hello = [sys.executable, "-m", "hypercorn", "--worker-class", "trio",
                 "--workers", str(max(1, workers or 1)), "--bind", f"127.0.0.1:{port}",
                 "bench.hello_app:app"]  # fmt: skip
        with process(hello, cpus=args.server_cpus):
            _wait_ok(f"http://127.0.0.1:{port}/hello")
            spec = {
                "base": f"http://127.0.0.1:{port}/hello",
                "mode": "hello",
                "stages": [
                    {"label": "warmup", "users": args.saturation_users, "seconds": 3,
                     "think": 0, "record": False},
                    {"label": "baseline", "users": args.saturation_users,
                     "seconds": args.saturation_seconds, "think": 0},
                ],
            }  # fmt: skip
            baseline = run_client(spec, args.client_cpus, lambda *_: None, log_dir)[0]
        baseline_rps = baseline["goodput"]
        report["baseline"] = baseline
        print(f"baseline (bare hypercorn-trio hello): {baseline_rps:.0f} req/s, "
              f"p95 {baseline['ok']['p95']} ms, client cpu {baseline['client_cpu']}")  # fmt: skip

    # 3. Coves and its surroundings.
    plc_port, feed_port, port = free_port(), free_port(), free_port()
    pg_conninfo = EmbeddedPostgres(data_dir).conninfo()
    env = {
        "COVES_DATA_DIR": str(data_dir),
        "PLC_DIRECTORY_URL": f"http://127.0.0.1:{plc_port}",
        "JETSTREAM_URL": f"ws://127.0.0.1:{feed_port}/subscribe",
        "JETSTREAM_ENABLED": "true" if args.ingest_rate > 0 else "false",
        "RATE_LIMIT_GENERAL": "1000000000",
        "RATE_LIMIT_COMMENTS": "1000000000",
        "LOG_LEVEL": "warning",
    }
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    serve = [sys.executable, "-m", "coves", "serve", "--port", str(port)]
    if workers is not None:
        serve += ["--workers", str(workers)]
    plc = [sys.executable, "-m", "hypercorn", "--worker-class", "trio",
           "--bind", f"127.0.0.1:{plc_port}", "bench.plc_fixture:app"]  # fmt: skip
    feed = [sys.executable, "-m", "bench.jetstream_feed", "--targets", str(targets),
            "--rate", str(args.ingest_rate), "--port", str(feed_port)]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        plc_proc = stack.enter_context(
            process(plc, cpus=args.client_cpus, env={"BENCH_VIEWERS": str(args.viewers)},
                    log=log_dir / "plc.log")
        )  # fmt: skip
        _wait_status(f"http://127.0.0.1:{plc_port}/did:plc:none", 404)
        helpers = [plc_proc.pid]
        if args.ingest_rate > 0:
            feed_log = log_dir / "feed.log"
            feed_proc = stack.enter_context(process(feed, cpus=args.client_cpus, log=feed_log))
            wait_for_line(feed_log, r"^READY ", feed_proc, 60)
            helpers.append(feed_proc.pid)
        coves = stack.enter_context(
            process(serve, cpus=args.server_cpus, env=env, log=log_dir / "coves.log")
        )
        _wait(f"{base}/xrpc/_health", coves, timeout=300)
        lag = LagMonitor(pg_conninfo)
        thread = threading.Thread(target=lag.run, daemon=True)
        thread.start()
        stack.callback(lag.stop.set)

        marks: dict[str, dict[str, Any]] = {}

        def on_stage(label: str, edge: str) -> None:
            marks.setdefault(label, {})[edge] = {
                "cpu": server_cpu(coves.pid),
                "helpers": pids_cpu(helpers),
                "metrics": scrape(base),
            }

        stages = (
            [
                {
                    "label": "warmup",
                    "users": max(20, args.saturation_users // 4),
                    "seconds": args.warmup,
                    "think": 0.5,
                    "record": False,
                }
            ]
            if args.warmup
            else []
        )
        stages.append(
            {
                "label": "saturation",
                "users": args.saturation_users,
                "seconds": args.saturation_seconds,
                "think": 0,
            }
        )
        for users in [int(u) for u in args.stages.split(",") if u.strip()]:
            stages.append({"label": f"think-{users}", "users": users,
                           "seconds": args.stage_seconds, "think": args.think})  # fmt: skip
        spec = {
            "base": base,
            "mode": "sessions",
            "stages": stages,
            "signed_in": args.signed_in,
            "viewers": args.viewers,
            "targets": str(targets),
            "audience": "did:web:localhost",
        }
        phases = run_client(spec, args.client_cpus, on_stage, log_dir)
        health = httpx.get(f"{base}/xrpc/_health", timeout=10).json()
    for phase in phases:
        edge = marks.get(phase["label"], {})
        if "start" in edge and "done" in edge:
            phase["server"] = _server_figures(edge["start"], edge["done"], lag)
    report["phases"] = phases
    report["health_after"] = health
    _print_report(report, baseline_rps)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"results written to {args.out}")


def _server_figures(start: dict[str, Any], done: dict[str, Any], lag: LagMonitor) -> dict[str, Any]:
    a, b = start["cpu"], done["cpu"]
    wall = max(1e-9, b.at - a.at)
    ma, mb = start["metrics"], done["metrics"]

    def delta(name: str) -> float:
        return mb.get(name, 0.0) - ma.get(name, 0.0)

    return {
        "wall": round(wall, 2),
        "coves_cpu": round((b.coves - a.coves) / wall, 3),
        "postgres_cpu": round((b.postgres - a.postgres) / wall, 3),
        "helpers_cpu": round((done["helpers"] - start["helpers"]) / wall, 3),
        "gc_seconds": round(delta("coves_gc_seconds_total"), 3),
        "gc_share": round(delta("coves_gc_seconds_total") / wall, 4),
        "shed": delta("coves_admission_rejected_total"),
        "ingest_lag": lag.window(a.at, b.at),
    }


def _wait_ok(url: str, timeout: float = 60.0) -> None:
    _wait_status(url, 200, timeout)


def _wait_status(url: str, status: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == status:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered {status}")


def _print_report(report: dict[str, Any], baseline_rps: float | None) -> None:
    print()
    for phase in report["phases"]:
        server = phase.get("server", {})
        ratio = (
            f"  ratio {phase['goodput'] / baseline_rps:.2f}x"
            if baseline_rps and phase["label"] == "saturation"
            else ""
        )
        print(
            f"== {phase['label']}: {phase['users']} users, think {phase['think']} s: "
            f"{phase['goodput']:.0f} req/s served{ratio}, {phase['shed']} shed (503), "
            f"{phase['errors']} errors; ok p50 {phase['ok']['p50']} p95 {phase['ok']['p95']} "
            f"p99 {phase['ok']['p99']} ms"
        )
        if server:
            print(
                f"   server cpu: coves {server['coves_cpu']:.2f} + postgres "
                f"{server['postgres_cpu']:.2f} cores; gc {server['gc_seconds']} s "
                f"({server['gc_share'] * 100:.1f}% of wall); ingest lag {server['ingest_lag']}; "
                f"client cpu {phase['client_cpu']:.2f} + helpers {server['helpers_cpu']:.2f}"
            )
        if phase["label"] == "saturation" or os.environ.get("TRAFFIC_ALL_ENDPOINTS"):
            for name, figures in phase["endpoints"].items():
                print(
                    f"     {name:<36} n={figures['n']:>6}  p50 {figures['p50']:>8} "
                    f"p95 {figures['p95']:>8} p99 {figures['p99']:>8} ms"
                )
    ramp = [p for p in report["phases"] if p["label"].startswith("think-")]
    for limit in (100, 500):
        held = [p["users"] for p in ramp if p["ok"]["p95"] < limit and p["shed"] == 0]
        print(f"think-time users held at p95 < {limit} ms: {max(held) if held else 0}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
