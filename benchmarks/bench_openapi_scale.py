#!/usr/bin/env python
"""Benchmark: memory and time of the OpenAPI sweep's parsing and planning, 1k to 10k operations.

For each size, tests/checks/test_openapi_sweep.py's generated spec (one path per secured
operation, path parameters with examples/defaults/enums/types, plus a public and an
optional-auth operation) is written to a file as JSON and as YAML; a fresh child process
(one per size, format and round, so peak RSS is its own) imports the plugin, then reads the
file, parses it (openapi.parse_document), lists the operations (openapi.operations) and
builds the probes the sweep sends (anonymous_probe, deduplicated as the check does). No
request is sent. Reported: the child's peak RSS (ru_maxrss) and its RSS after the imports,
and the time of each step; medians of the rounds. "yaml-csafe" is a what-if, not the
plugin's path: the same YAML files through yaml.load(..., Loader=yaml.CSafeLoader) (libyaml,
with its node graph); the plugin builds objects from the parser's events (openapi.load_yaml).

    python benchmarks/bench_openapi_scale.py [--rounds 3] [--sizes 1000,2000,5000,10000]

Writes benchmarks/results/openapi_scale.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "openapi_scale.json"


def status_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: on Linux it survives
    execve, so a child would report its parent's peak (the parent holds every spec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(path: str, loader: str) -> None:
    t0 = time.perf_counter()
    from pytest_prodready import openapi
    from pytest_prodready.checks.common import anonymous_probe

    t_import = time.perf_counter()
    rss_imported = status_kib("VmRSS")
    peak_imported = status_kib("VmHWM")
    data = Path(path).read_bytes()
    t_read = time.perf_counter()
    if loader == "csafe":  # what-if: libyaml's C loader instead of parse_document's pure-Python one
        import yaml

        doc = yaml.load(data, Loader=yaml.CSafeLoader)
    else:
        doc = openapi.parse_document(data)
    t_parse = time.perf_counter()
    ops = openapi.operations(doc)
    t_ops = time.perf_counter()
    secured = [op for op in ops if op.secured and not op.optional_auth]
    probes = {op: anonymous_probe(op.endpoint) for op in secured}
    unique = list(dict.fromkeys(probes.values()))
    t_probes = time.perf_counter()
    print(json.dumps({
        "bytes": len(data), "operations": len(ops), "probes": len(unique),
        "import_s": t_import - t0, "read_s": t_read - t_import, "parse_s": t_parse - t_read,
        "operations_s": t_ops - t_parse, "probes_s": t_probes - t_ops,
        "parse_plan_s": t_probes - t_import,
        "rss_after_imports_mib": rss_imported / 1024,
        "peak_rss_after_imports_mib": peak_imported / 1024,
        "rss_end_mib": status_kib("VmRSS") / 1024,
        "peak_rss_mib": status_kib("VmHWM") / 1024,
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1000,2000,5000,10000")
    parser.add_argument("--formats", default="json,yaml")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--loader", default="plugin", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.loader)
        return 0
    sys.path.insert(0, str(REPO))
    import yaml
    from tests.checks.test_openapi_sweep import generated_spec

    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    if "yaml" in formats:
        formats.append("yaml-csafe")
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="prodready-bench-openapi-") as tmp:
        files: dict[tuple[str, int], Path] = {}
        for n in sizes:
            spec = generated_spec(n)
            for fmt in formats:
                if fmt == "yaml-csafe":
                    files[fmt, n] = files["yaml", n]
                    continue
                path = files[fmt, n] = Path(tmp) / f"spec-{n}.{fmt}"
                path.write_text(json.dumps(spec) if fmt == "json" else yaml.safe_dump(spec, sort_keys=False))
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {k: [] for k in files}
        for _ in range(args.rounds):  # interleaved: every size and format once a round
            for key, path in files.items():
                loader = "csafe" if key[0] == "yaml-csafe" else "plugin"
                proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--loader", loader],
                                      capture_output=True, text=True, check=True)
                runs[key].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        for (fmt, n), rs in runs.items():
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], float)}
            med.update({k: rs[0][k] for k in ("bytes", "operations", "probes")})
            results.setdefault(fmt, {})[str(n)] = {"medians": med, "runs": rs}
            print(f"{fmt} {n:>6} ops ({med['bytes'] / 2**20:.1f} MiB): "
                  f"parse+plan {med['parse_plan_s']:.3f} s "
                  f"(parse {med['parse_s']:.3f}, operations {med['operations_s']:.3f}, probes "
                  f"{med['probes_s']:.3f}); peak RSS {med['peak_rss_mib']:.1f} MiB (after imports "
                  f"{med['rss_after_imports_mib']:.1f})", file=sys.stderr)
    load_after = os.getloadavg()
    # Linearity: time and memory added per 1,000 operations, between consecutive sizes.
    linearity: dict[str, Any] = {}
    for fmt, by_n in results.items():
        ns = sorted(int(n) for n in by_n)
        def per_1000(metric: str, a: int, b: int, by_n: dict[str, Any] = by_n) -> float:
            return float(by_n[str(b)]["medians"][metric] - by_n[str(a)]["medians"][metric]) / (b - a) * 1000

        linearity[fmt] = [{"from": a, "to": b, "seconds_per_1000_ops": per_1000("parse_plan_s", a, b),
                           "mib_per_1000_ops": per_1000("peak_rss_mib", a, b)}
                          for a, b in itertools.pairwise(ns)]
        first = by_n[str(ns[0])]["medians"]["parse_plan_s"] / ns[0]
        linearity[fmt + "_time_per_op_ratio_largest_vs_smallest"] = \
            (by_n[str(ns[-1])]["medians"]["parse_plan_s"] / ns[-1]) / first
    result = {
        "benchmark": "openapi_scale", "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/bench_openapi_scale.py",
                               *(sys.argv[1:] if argv is None else argv)]),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "pyyaml": yaml.__version__,
                    "yaml_libyaml": bool(getattr(yaml, "__with_libyaml__", False))},
        "note": "parse_document uses json.loads, then openapi.load_yaml (objects built from the parser events, libyaml parser when built; no node graph) for non-JSON; yaml-csafe is yaml.load with CSafeLoader, for comparison",
        "load_average_before": load_before, "load_average_after": load_after,
        "results": results, "linearity": linearity,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(linearity, indent=2))
    print(f"load average before {load_before}, after {load_after}; results written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
