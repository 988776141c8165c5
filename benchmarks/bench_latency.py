#!/usr/bin/env python
"""Benchmark: perf.latency_budget's percentiles against the truth and against wrk.

The target is tests/targets/limiters.py's delayed server (Python's ThreadingHTTPServer in its
own process, Nagle off) told to add a known delay to every GET /slow: uniform in
[mean - spread, mean + spread], drawn from the request's X-Prodready-Seq number, so the
delay of each of the check's requests is known exactly (the "truth"; wrk's requests carry no
number and get a fresh draw from the same distribution, whose exact quantiles are also
known: mean - spread + 2 * spread * q).

For each distribution and round, interleaved: the check (run_check, as the plugin runs it,
a fresh Target each time) with N requests at concurrency C, then wrk on the same endpoint
with C connections for a few seconds. Reported: p50/p95/p99 of ours, of the truth of the
same requests, of wrk, and of the distribution; the ratios ours/truth and ours/wrk per round
(measured in the same round), medians over rounds. With --locust, each round also runs the
check on Locust's distributed mode (runner = "locust", master + 2 workers on loopback) and
reports its percentiles and its ratios to the in-process check and to wrk in that round.

    python benchmarks/bench_latency.py [--rounds 5] [--requests 200] [--concurrency 4] [--locust]

Writes benchmarks/results/latency.json. Nothing here is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conftest import make_target  # noqa: E402
from tests.targets.limiters import delayed  # noqa: E402

from pytest_prodready.checking import run_check  # noqa: E402
from pytest_prodready.checks.perf import Distribution, percentile  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "latency.json"
QUANTILES = (50.0, 95.0, 99.0)

WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("P50_US %d\\nP95_US %d\\nP99_US %d\\nREQUESTS %d\\nERRORS %d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    threads = min(2, connections)
    out = subprocess.run([binary, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "-s", str(script), url], capture_output=True, text=True,
                         timeout=seconds + 30, check=True).stdout
    values = dict(line.split() for line in out.splitlines()
                  if line.startswith(("P50_US", "P95_US", "P99_US", "REQUESTS", "ERRORS")))
    return {"p50_ms": int(values["P50_US"]) / 1000, "p95_ms": int(values["P95_US"]) / 1000,
            "p99_ms": int(values["P99_US"]) / 1000, "requests": int(values["REQUESTS"]),
            "errors": int(values["ERRORS"])}


def wrk_version() -> str:
    proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).split("\n")[0]


def ours(url: str, requests: int, concurrency: int,
         runner: str = "in-process") -> tuple[dict[str, float], float, str]:
    target = make_target(url, max_concurrency=max(8, concurrency),
                         latency={"/slow": {"requests": requests, "concurrency": concurrency,
                                            "runner": runner}},
                         request_budget=requests + 200)
    try:
        start = time.perf_counter()
        result = run_check("perf.latency_budget", target, "GET /slow")
        wall = time.perf_counter() - start
    finally:
        target.close()
    dist = next(f for f in result.facts if isinstance(f, Distribution))
    stats = {f"p{q:g}_ms": dist.p(q) for q in QUANTILES}
    stats["mean_ms"] = statistics.fmean(dist.samples_ms)
    stats["samples"] = len(dist.samples_ms)
    stats["errors"] = dist.errors
    return stats, wall, result.outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="the check's N (warm-up: 5 more)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--wrk-seconds", type=int, default=3)
    parser.add_argument("--distributions", default="40:5,100:10",
                        help="mean:spread in ms, comma separated (default 40:5,100:10)")
    parser.add_argument("--locust", action="store_true",
                        help="also measure through Locust's distributed mode (master + 2 workers)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    dists = [tuple(float(x) for x in d.split(":")) for d in args.distributions.split(",")]
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    out_cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="prodready-bench-latency-") as tmp:
        script = Path(tmp) / "quantiles.lua"
        script.write_text(WRK_SCRIPT)
        for mean, spread in dists:
            with delayed(mean, spread) as served:
                truth_samples = served.truth(args.requests)
                truth = {f"p{q:g}_ms": percentile(truth_samples, q) for q in QUANTILES}
                population = {f"p{q:g}_ms": mean - spread + 2 * spread * q / 100 for q in QUANTILES}
                ours(served.url, 20, args.concurrency)  # warm-up, untimed
                rounds: list[dict[str, Any]] = []
                for r in range(1, args.rounds + 1):
                    mine, wall, outcome = ours(served.url, args.requests, args.concurrency)
                    theirs = wrk(f"{served.url}/slow", args.concurrency, args.wrk_seconds, script)
                    row = {"ours": mine, "wrk": theirs, "check_wall_s": wall, "outcome": outcome,
                           "load_1min": os.getloadavg()[0]}
                    if args.locust:
                        dist_mode, locust_wall, locust_outcome = ours(served.url, args.requests,
                                                                      args.concurrency, "locust")
                        row.update(locust=dist_mode, locust_wall_s=locust_wall, locust_outcome=locust_outcome)
                        for key in truth:
                            row[f"{key}_locust_over_ours"] = dist_mode[key] / mine[key]
                            row[f"{key}_locust_over_wrk"] = dist_mode[key] / theirs[key]
                    for key in truth:
                        row[f"{key}_ours_over_truth"] = mine[key] / truth[key]
                        row[f"{key}_ours_over_wrk"] = mine[key] / theirs[key]
                        row[f"{key}_wrk_over_population"] = theirs[key] / population[key]
                    rounds.append(row)
                    print(f"{mean:g}+-{spread:g} ms round {r}: ours p50/p95/p99 "
                          f"{mine['p50_ms']:.2f}/{mine['p95_ms']:.2f}/{mine['p99_ms']:.2f}, truth "
                          f"{truth['p50_ms']:.2f}/{truth['p95_ms']:.2f}/{truth['p99_ms']:.2f}, wrk "
                          f"{theirs['p50_ms']:.2f}/{theirs['p95_ms']:.2f}/{theirs['p99_ms']:.2f} "
                          f"({theirs['requests']} requests)", file=sys.stderr)
                med: dict[str, float] = {}
                for key in truth:
                    med[f"ours_{key}"] = statistics.median(x["ours"][key] for x in rounds)
                    med[f"wrk_{key}"] = statistics.median(x["wrk"][key] for x in rounds)
                    ratios = ["ours_over_truth", "ours_over_wrk", "wrk_over_population"]
                    if args.locust:
                        med[f"locust_{key}"] = statistics.median(x["locust"][key] for x in rounds)
                        ratios += ["locust_over_ours", "locust_over_wrk"]
                    for ratio in ratios:
                        med[f"{key}_{ratio}"] = statistics.median(x[f"{key}_{ratio}"] for x in rounds)
                med["check_wall_s"] = statistics.median(x["check_wall_s"] for x in rounds)
                out_cases.append({"mean_ms": mean, "spread_ms": spread, "distribution": "uniform",
                                  "truth_of_our_requests": truth, "population": population,
                                  "medians": med, "rounds": rounds})
    load_after = os.getloadavg()
    lines = ["| delay | | p50 ms | p95 ms | p99 ms |", "|---|---|---:|---:|---:|"]
    for case in out_cases:
        m, t, p = case["medians"], case["truth_of_our_requests"], case["population"]
        label = f"{case['mean_ms']:g} ± {case['spread_ms']:g} ms"
        rows = [("truth of our requests", t), ("distribution", p),
                ("ours (median of rounds)", {k: m[f"ours_{k}"] for k in t}),
                ("wrk (median of rounds)", {k: m[f"wrk_{k}"] for k in t})]
        if args.locust:
            rows.append(("ours on Locust, master + 2 workers (median)", {k: m[f"locust_{k}"] for k in t}))
        for name, vals in rows:
            lines.append(f"| {label} | {name} | " + " | ".join(f"{vals[k]:.2f}" for k in t) + " |")
        for ratio in ("ours_over_truth", "ours_over_wrk",
                      *(("locust_over_ours", "locust_over_wrk") if args.locust else ())):
            lines.append(f"| {label} | {ratio.replace('_', ' ')} (median of per-round ratios) | "
                         + " | ".join(f"{m[f'{k}_{ratio}']:.3f}" for k in t) + " |")
    table = "\n".join(lines)
    print(table)
    print(f"load average before {load_before}, after {load_after}")
    result = {
        "benchmark": "latency", "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/bench_latency.py",
                               *(sys.argv[1:] if argv is None else argv)]),
        "settings": {"rounds": args.rounds, "requests": args.requests, "warmup": 5,
                     "concurrency": args.concurrency, "wrk_seconds": args.wrk_seconds,
                     "wrk_threads": min(2, args.concurrency), "locust": args.locust,
                     "order": "interleaved: ours then wrk, per round"},
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "wrk": wrk_version()},
        "load_average_before": load_before, "load_average_after": load_after,
        "cases": out_cases, "markdown_table": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
