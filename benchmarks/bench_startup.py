#!/usr/bin/env python
"""Benchmark: what the installed plugin costs a pytest run that does not use it.

A temporary project with one ordinary test file (no prodready.toml, no --prodready) and
`python -m pytest --collect-only -q`, with and without the plugin (`-p no:prodready`),
hypothesis's plugin disabled in both (`-p no:hypothesispytest`: it is the largest start-up
cost on this machine and would drown the difference), cacheprovider off so runs do not
write. Measured two ways:

- an interleaved Python loop (one run of each case per round, perf_counter around
  subprocess.run), so load changes hit every case alike; the overhead is the median of the
  per-round differences;
- hyperfine (Debian `hyperfine`), when installed, with its own warm-up, 15 runs a case.

Both with bytecode as this environment has it (PYTHONDONTWRITEBYTECODE=1 here: pytest
recompiles and re-rewrites every run) and with a bytecode cache (PYTHONPYCACHEPREFIX, like
most machines). Also one `-X importtime` run: what importing pytest_prodready costs.

    python benchmarks/bench_startup.py [--runs 15]

Writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
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
RESULTS = REPO / "benchmarks" / "results" / "startup.json"
BASE = ["-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
CASES = {
    "with_plugin": BASE,
    "without_plugin": [*BASE, "-p", "no:prodready"],
}
TEST_FILE = "def test_one():\n    assert 1 + 1 == 2\n\n\ndef test_two():\n    assert 'a' in 'abc'\n"


def env_for(mode: str, cache_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRODREADY_", "PYTEST_ADDOPTS"))}
    if mode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def loop(project: Path, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in CASES}
    for args in CASES.values():  # warm-up
        subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, check=True)
    for _ in range(runs):
        for key, args in CASES.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, check=True)
            times[key].append(time.perf_counter() - start)
    return times


def hyperfine(project: Path, env: dict[str, str], runs: int, out: Path) -> dict[str, Any] | None:
    binary = shutil.which("hyperfine")
    if binary is None:
        return None
    commands = [shlex.join([sys.executable, *args]) for args in CASES.values()]
    subprocess.run([binary, "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(out),
                    *[a for key, c in zip(CASES, commands, strict=True) for a in ("-n", key, c)]],
                   cwd=project, env=env, capture_output=True, check=True)
    data = json.loads(out.read_text())
    return {r["command"]: {"median_s": r["median"], "mean_s": r["mean"], "stddev_s": r["stddev"],
                           "min_s": r["min"], "max_s": r["max"], "times_s": r["times"]}
            for r in data["results"]}


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def import_cost(project: Path, env: dict[str, str]) -> dict[str, Any]:
    """-X importtime of the with-plugin case: the cumulative import time of pytest_prodready
    (and of the top-level modules it alone brings in)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *CASES["with_plugin"]], cwd=project, env=env,
                          capture_output=True, text=True, check=True)
    top: list[tuple[str, int]] = []
    prodready_us = 0
    for line in proc.stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if not m:
            continue
        cumulative, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        if name == "pytest_prodready" or (name.startswith("pytest_prodready.") and indent <= 1):
            prodready_us += cumulative
        if indent <= 1:
            top.append((name, cumulative))
    prodready_children = [(n, us) for n, us in top if n.startswith("pytest_prodready")]
    return {"pytest_prodready_cumulative_ms": prodready_us / 1000,
            "top_level_imports_ms": {n: us / 1000 for n, us in prodready_children}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    modes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="prodready-bench-startup-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "test_plain.py").write_text(TEST_FILE)
        cache = str(Path(tmp) / "pycache")
        for mode in ("as_here", "cached"):
            env = env_for(mode, cache)
            times = loop(project, env, args.runs)
            diffs = [w - wo for w, wo in zip(times["with_plugin"], times["without_plugin"], strict=True)]
            hf = hyperfine(project, env, args.runs, Path(tmp) / f"hf-{mode}.json")
            entry: dict[str, Any] = {
                "PYTHONDONTWRITEBYTECODE": env.get("PYTHONDONTWRITEBYTECODE"),
                "PYTHONPYCACHEPREFIX": "(temporary dir)" if "PYTHONPYCACHEPREFIX" in env else None,
                "loop": {k: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "times_s": v}
                         for k, v in times.items()},
                "loop_overhead_median_of_round_differences_ms": statistics.median(diffs) * 1000,
                "loop_overhead_difference_of_medians_ms": 1000 * (
                    statistics.median(times["with_plugin"]) - statistics.median(times["without_plugin"])),
                "hyperfine": hf,
                "import": import_cost(project, env),
            }
            if hf:
                entry["hyperfine_overhead_difference_of_medians_ms"] = \
                    (hf["with_plugin"]["median_s"] - hf["without_plugin"]["median_s"]) * 1000
            modes[mode] = entry
            print(f"{mode}: loop with {statistics.median(times['with_plugin']) * 1000:.0f} ms, without "
                  f"{statistics.median(times['without_plugin']) * 1000:.0f} ms, overhead (median of "
                  f"round differences) {entry['loop_overhead_median_of_round_differences_ms']:.1f} ms; "
                  f"hyperfine overhead "
                  f"{entry.get('hyperfine_overhead_difference_of_medians_ms', float('nan')):.1f} ms; "
                  f"import of pytest_prodready {entry['import']['pytest_prodready_cumulative_ms']:.1f} ms")
    load_after = os.getloadavg()
    hf_version = ""
    if shutil.which("hyperfine"):
        hf_version = subprocess.run(["hyperfine", "--version"], capture_output=True, text=True).stdout.strip()
    result = {
        "benchmark": "startup", "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/bench_startup.py",
                               *(sys.argv[1:] if argv is None else argv)]),
        "cases": {k: shlex.join(["python", *v]) for k, v in CASES.items()},
        "project": "one test file with two tests; no prodready.toml",
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "hyperfine": hf_version},
        "load_average_before": load_before, "load_average_after": load_after, "modes": modes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average before {load_before}, after {load_after}; results written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
