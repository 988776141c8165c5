"""The OpenAPI sweep over a 1,000-operation spec against a local target with 50 ms added
latency, against a sequential `requests` loop over the same operations (issue 11).

Run: python benchmarks/bench_openapi_sweep.py   (from the repo root, in the test venv)
The target (tests/checks/test_openapi_sweep.py's counting Flask app, threaded, in its own
process so that it does not share the checker's GIL) sleeps 50 ms per /api/v1 request and
refuses anonymous callers. The sweep runs in active mode (all
1,000 operations sent) at max_concurrency 8; the ideal is operations x latency /
concurrency. The sequential loop sends the first 200 operations one after another with a
requests.Session (its rate is per operation, so 200 are enough). Prints one JSON object
and writes benchmarks/results/openapi_sweep.json.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from tests.checks.test_openapi_sweep import generated_spec, serve_api

from pytest_prodready import openapi
from pytest_prodready.checking import run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target

OPERATIONS = 1000
LATENCY_S = 0.05
CONCURRENCY = 8
SEQUENTIAL = 200
ROUNDS = 3


def _serve(spec: dict[str, Any], urls: Any, stop: Any) -> None:
    with serve_api(spec, delay_s=LATENCY_S) as served:
        urls.put(served.url)
        stop.wait()


@contextmanager
def target_process(spec: dict[str, Any]) -> Iterator[str]:
    urls: Any = multiprocessing.Queue()
    stop = multiprocessing.Event()
    child = multiprocessing.Process(target=_serve, args=(spec, urls, stop), daemon=True)
    child.start()
    try:
        yield str(urls.get(timeout=30))
    finally:
        stop.set()
        child.join(timeout=10)


def main() -> None:
    spec = generated_spec(OPERATIONS)
    ops = [op for op in openapi.operations(spec) if op.secured and not op.optional_auth]
    sweeps, loops = [], []
    with target_process(spec) as url:
        for _ in range(ROUNDS):
            settings = Settings(values={**DEFAULTS, "base_url": url, "openapi": "/openapi.json",
                                        "max_concurrency": CONCURRENCY, "request_budget": 5000},
                                secrets={}, sources={}, active=True)
            with Target(settings) as target:
                start = time.perf_counter()
                result = run_check("openapi.operations_require_auth", target, "/openapi.json")
                sweeps.append(time.perf_counter() - start)
            assert result.outcome == "passed", result.message
            with requests.Session() as session:
                start = time.perf_counter()
                for op in ops[:SEQUENTIAL]:
                    session.request(op.method, url + op.path, timeout=10)
                loops.append(time.perf_counter() - start)
    sweep_s = statistics.median(sweeps)
    loop_per_op = statistics.median(loops) / SEQUENTIAL
    ideal_s = len(ops) * LATENCY_S / CONCURRENCY
    out = {
        "operations": len(ops), "latency_ms": LATENCY_S * 1000, "max_concurrency": CONCURRENCY,
        "sweep_s_median": round(sweep_s, 2), "sweep_s_all": [round(s, 2) for s in sweeps],
        "sweep_ops_per_s": round(len(ops) / sweep_s, 1),
        "sequential_requests_ops_per_s": round(1 / loop_per_op, 1),
        "ideal_s": round(ideal_s, 2), "sweep_over_ideal": round(sweep_s / ideal_s, 3),
        "speedup_over_sequential": round(loop_per_op * len(ops) / sweep_s, 2),
        "result": result.message[:200],
    }
    print(json.dumps(out, indent=2))
    path = Path(__file__).parent / "results" / "openapi_sweep.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
