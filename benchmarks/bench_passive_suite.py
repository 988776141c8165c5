#!/usr/bin/env python
"""Benchmark: the whole passive built-in suite, end to end, through pytest.

Serves the test webapp (tests/targets/webapp.py, a real Flask app on Werkzeug's threaded
server) with a fixed delay in every request, like a staging round trip, and runs
`python -m pytest --prodready` against it in a temporary project, in a subprocess, as a
user would. Nothing is mocked: every probe is a real HTTP request over loopback.

Measured, interleaved round by round so machine noise hits every case alike:

- pytest, max_concurrency 8 (the default) and 1 (the sequential baseline), at the delay;
- the same at 0 ms delay: the fixed overhead (interpreter, plugins, collection, summary);
- pytest without --prodready in the same project: what pytest costs here with the plugin inert;
- the library path (Target + preflight + prefetch + execute for every check, no pytest), in
  a subprocess too, at both concurrencies.

The requests the target really received are counted on the server (the webapp's own log,
plus a WSGI middleware that timestamps each request), so the ideal
requests / concurrency x delay uses the real count. Wall times are reported as measured:
nothing is subtracted.

    python benchmarks/bench_passive_suite.py [--runs 5] [--delay-ms 50] [--phases]

Prints a Markdown table and writes benchmarks/results/passive_suite.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "passive_suite.json"
SUBPROCESS_TIMEOUT_S = 180
# Env vars that would change what the measured run does; the benchmark sets its own.
SCRUBBED_ENV_PREFIXES = ("PRODREADY_", "PYTEST_ADDOPTS")
PHASES_PLUGIN = "prodready_bench_phases"

# A pytest plugin (loaded with -p only in --phases runs) that stamps the run's phases on the
# system-wide monotonic clock, which the parent shares, and writes them to a JSON file.
PHASES_PLUGIN_SOURCE = '''
import atexit, json, os, time
import pytest

_marks = [("pytest started (entry-point plugins load next)", time.monotonic())]

def _mark(name):
    _marks.append((name, time.monotonic()))

class _SummaryStarts:
    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter):
        _mark("terminal summary starts (every plugin's, incl. the prodready scorecard)")

class _SummaryEnds:
    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        _mark("terminal summary ends")

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    _mark("configured (prodready: config loaded, checks imported)")
    config.pluginmanager.register(_SummaryStarts(), "bench-summary-starts")
    config.pluginmanager.register(_SummaryEnds(), "bench-summary-ends")

def pytest_collection_finish(session):
    _mark("collected")

@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    _mark("test loop starts (preflight + prefetch follow)")
    result = yield
    _mark("test loop ends")
    return result

def pytest_runtest_logstart(nodeid, location):
    if not any(n.startswith("first item") for n, _ in _marks):
        _mark("first item starts (prefetch done, judging)")

def pytest_sessionfinish(session, exitstatus):
    _mark("session finish (test loop done; reports, summaries follow)")

@pytest.hookimpl(wrapper=True)
def pytest_unconfigure(config):
    _mark("unconfigure starts")
    result = yield
    _mark("unconfigure ends")
    return result

@atexit.register
def _write():
    _mark("atexit (interpreter shutting down)")
    with open(os.environ["PRODREADY_BENCH_PHASES_OUT"], "w") as f:
        json.dump(_marks, f)
'''


# -- the target ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """One request the target served, on the monotonic clock (shared by all processes)."""

    start: float
    end: float
    method: str
    path: str


@dataclass
class CountingTarget:
    """The real webapp, with its request log and a timestamping WSGI middleware."""

    url: str
    delay_ms: float
    log: list[Any]
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.log.clear()
            self.hits.clear()

    def take(self) -> tuple[int, list[Hit]]:
        """(requests in the webapp's own log, timestamped hits) since the last reset."""
        with self.lock:
            return len(self.log), sorted(self.hits, key=lambda h: h.start)


@contextmanager
def serve_counting(delay_ms: float) -> Iterator[CountingTarget]:
    """tests.targets.webapp's app (no defects), served threaded on 127.0.0.1, with timing."""
    from tests.targets.webapp import QuietHandler, make_app
    from werkzeug.serving import make_server

    log: list[Any] = []
    app = make_app((), delay_ms, log)
    inner: Callable[..., Iterable[bytes]] = app.wsgi_app
    target = CountingTarget(url="", delay_ms=delay_ms, log=log)

    def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start = time.monotonic()
        body = inner(environ, start_response)
        try:
            return list(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            hit = Hit(start, time.monotonic(), environ["REQUEST_METHOD"], environ["PATH_INFO"])
            with target.lock:
                target.hits.append(hit)

    app.wsgi_app = timed  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def max_in_flight(hits: list[Hit]) -> int:
    """The most requests the server was handling at the same moment."""
    events = sorted([(h.start, 1) for h in hits] + [(h.end, -1) for h in hits],
                    key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


# -- the cases ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    key: str
    kind: str  # "pytest" | "pytest-inert" | "library"
    concurrency: int
    delay_ms: float
    description: str
    pytest_args: tuple[str, ...] = ()

    def command(self) -> list[str]:
        if self.kind == "library":
            return [sys.executable, str(Path(__file__).resolve()), "--library-child"]
        if self.kind == "pytest-inert":
            return [sys.executable, "-m", "pytest", *self.pytest_args]
        return [sys.executable, "-m", "pytest", "--prodready", *self.pytest_args]


def cases_for(delay_ms: float, concurrencies: list[int], library: bool,
              pytest_args: tuple[str, ...] = ()) -> list[Case]:
    out: list[Case] = []
    for c in concurrencies:
        out.append(Case(f"pytest-c{c}-d{delay_ms:g}", "pytest", c, delay_ms,
                        f"pytest --prodready, max_concurrency {c}, {delay_ms:g} ms/request",
                        pytest_args))
    for c in concurrencies:
        out.append(Case(f"pytest-c{c}-d0", "pytest", c, 0,
                        f"pytest --prodready, max_concurrency {c}, 0 ms (fixed overhead)",
                        pytest_args))
    out.append(Case("pytest-inert", "pytest-inert", concurrencies[0], 0,
                    "pytest without --prodready (plugin inert, nothing collected)", pytest_args))
    if library:
        for c in concurrencies:
            out.append(Case(f"library-c{c}-d{delay_ms:g}", "library", c, delay_ms,
                            f"library only (no pytest), max_concurrency {c}, {delay_ms:g} ms/request"))
        out.append(Case(f"library-c{concurrencies[0]}-d0", "library", concurrencies[0], 0,
                        f"library only, max_concurrency {concurrencies[0]}, 0 ms (fixed overhead)"))
    return out


def project_toml(url: str, concurrency: int) -> str:
    """The webapp's prodready.toml (the root conftest's), with max_concurrency set."""
    from conftest import webapp_toml

    return f"max_concurrency = {concurrency}\n" + webapp_toml(url)


# Set by --pycache-prefix: bytecode caching on for the measured processes, in a private
# directory (so pytest can cache its assertion rewrites without writing to site-packages).
PYCACHE_PREFIX: str | None = None


def run_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The inherited environment minus prodready/pytest overrides, plus the webapp's tokens."""
    from conftest import METRICS_TOKEN_ENV, TOKEN_ENV
    from tests.targets.webapp import METRICS_TOKEN, VALID_TOKEN

    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env[TOKEN_ENV] = VALID_TOKEN
    env[METRICS_TOKEN_ENV] = METRICS_TOKEN
    if PYCACHE_PREFIX:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE_PREFIX
    env.update(extra or {})
    return env


SUMMARY_LINE = re.compile(r"=+ (.+ in [\d.]+s.*?) =+$")


def run_once(case: Case, target: CountingTarget, project: Path,
             extra_env: dict[str, str] | None = None, extra_args: list[str] | None = None,
             keep_hits: bool = False) -> dict[str, Any]:
    target.reset()
    env = run_env(extra_env)
    start = time.monotonic()
    proc = subprocess.run(case.command() + (extra_args or []), cwd=project, env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False)
    end = time.monotonic()
    time.sleep(0.05)  # let the server's handler threads finish their bookkeeping
    requests, hits = target.take()
    run: dict[str, Any] = {"wall_s": end - start, "exit_code": proc.returncode, "requests": requests}
    if keep_hits and hits:
        t0 = hits[0].start
        run["timeline_ms"] = [{"start": round((h.start - t0) * 1000, 1), "end": round((h.end - t0) * 1000, 1),
                               "method": h.method, "path": h.path} for h in hits]
    if len(hits) != requests:
        run["note"] = f"middleware saw {len(hits)} requests, the webapp logged {requests}"
    if hits:
        run["first_request_after_s"] = hits[0].start - start
        run["request_window_s"] = max(h.end for h in hits) - hits[0].start
        run["after_last_request_s"] = end - max(h.end for h in hits)
        run["max_in_flight"] = max_in_flight(hits)
        if len(hits) > 1:
            # The plugin sends one preflight request alone, then prefetches everything else.
            rest = hits[1:]
            run["first_request_s"] = hits[0].end - hits[0].start
            run["gap_after_first_request_s"] = rest[0].start - hits[0].end
            run["rest_window_s"] = max(h.end for h in rest) - rest[0].start
        run["requests_by_method"] = dict(Counter(h.method for h in hits))
    if case.kind == "library":
        try:
            run["library"] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            run["library"] = None
        outcomes = (run["library"] or {}).get("outcomes", {})
        # On the well-configured webapp every check passes, or skips when not configured.
        if not outcomes or set(outcomes) - {"passed", "skipped"}:
            run["error"] = f"library run: outcomes {outcomes}, expected passed/skipped only"
    else:
        lines = [m.group(1) for line in proc.stdout.splitlines() if (m := SUMMARY_LINE.search(line))]
        run["pytest_summary"] = lines[-1] if lines else None
    expected_exit = 5 if case.kind == "pytest-inert" else 0  # 5: no tests collected
    if proc.returncode != expected_exit:
        run["error"] = run.get("error", "") + (f"exit code {proc.returncode} (expected {expected_exit}); "
                        f"stdout tail: {proc.stdout[-1500:]!r}; stderr tail: {proc.stderr[-1500:]!r}")
    return run


# -- the library path (runs in a child process, prints one JSON line) ---------------------
def library_child() -> None:
    """Target + preflight + prefetch + execute for every built-in check, as the plugin does."""
    t0 = time.monotonic()
    from pytest_prodready.checking import execute
    from pytest_prodready.config import Overrides, load_settings
    from pytest_prodready.registry import all_checks
    from pytest_prodready.target import Target

    checks = all_checks()
    t_import = time.monotonic()
    settings = load_settings(Path.cwd(), Overrides())
    target = Target(settings)
    work = [(spec, subject) for spec in checks.values()
            for subject in (spec.subjects_for(settings) if not spec.missing_config(settings) else [""])
            or [""]]
    t_setup = time.monotonic()
    target.preflight()
    t_preflight = time.monotonic()
    # As the plugin's pytest_runtestloop does: every item's probes, then prefetch them all.
    probes = [p for spec, subject in work if not spec.missing_config(settings)
              for p in spec.probes_for(settings, subject)]
    t_probes = time.monotonic()
    target.prefetch(probes)
    t_prefetch = time.monotonic()
    outcomes = Counter(execute(spec, target, subject).outcome for spec, subject in work)
    t_judge = time.monotonic()
    target.close()
    print(json.dumps({
        "import_s": t_import - t0, "settings_and_target_s": t_setup - t_import,
        "preflight_s": t_preflight - t_setup, "build_probes_s": t_probes - t_preflight,
        "prefetch_s": t_prefetch - t_probes,
        "judge_s": t_judge - t_prefetch, "checks": len(work), "outcomes": dict(outcomes),
        "requests_sent": target.budget.spent,
    }))


# -- statistics and output ----------------------------------------------------------------
def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(case: Case, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs_ok": len(ok), "runs_failed": len(runs) - len(ok)}
    if not ok:
        return out
    out["wall_s"] = spread([r["wall_s"] for r in ok])
    counts = sorted({r["requests"] for r in ok})
    out["requests"] = counts[0] if len(counts) == 1 else counts
    if all("request_window_s" in r for r in ok):
        out["request_window_s"] = spread([r["request_window_s"] for r in ok])
        out["first_request_after_s"] = spread([r["first_request_after_s"] for r in ok])
        out["after_last_request_s"] = spread([r["after_last_request_s"] for r in ok])
        out["max_in_flight"] = max(r["max_in_flight"] for r in ok)
    for key in ("first_request_s", "gap_after_first_request_s", "rest_window_s"):
        if all(key in r for r in ok):
            out[key] = spread([r[key] for r in ok])
    requests = statistics.median([r["requests"] for r in ok])
    if case.delay_ms and case.kind != "pytest-inert":
        ideal = requests / case.concurrency * case.delay_ms / 1000
        out["ideal_s"] = ideal
        out["wall_over_ideal"] = out["wall_s"]["median"] / ideal
        if "request_window_s" in out:
            out["window_over_ideal"] = out["request_window_s"]["median"] / ideal
        if "rest_window_s" in out:
            rest_ideal = (requests - 1) / case.concurrency * case.delay_ms / 1000
            out["rest_ideal_s"] = rest_ideal
            out["rest_window_over_rest_ideal"] = out["rest_window_s"]["median"] / rest_ideal
    if case.kind == "library" and all(r.get("library") for r in ok):
        phases = ("import_s", "settings_and_target_s", "preflight_s", "build_probes_s",
                  "prefetch_s", "judge_s")
        out["library_phases_s"] = {p: statistics.median([r["library"][p] for r in ok]) for p in phases}
        out["library_outcomes"] = ok[-1]["library"]["outcomes"]
    else:
        summaries = {r.get("pytest_summary") for r in ok}
        out["pytest_summary"] = sorted(s for s in summaries if s)
    return out


def fmt_s(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{stats['median']:.2f} s ({stats['min']:.2f}-{stats['max']:.2f})"


def markdown_table(cases: list[Case], summaries: dict[str, dict[str, Any]]) -> str:
    rows = ["| case | concurrency | delay | requests | wall, median (min-max) | ideal "
            "| wall / ideal | request window, median | window / ideal | max in flight |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        s = summaries[case.key]
        concurrency = "-" if case.kind == "pytest-inert" else str(case.concurrency)
        if "wall_s" not in s:
            rows.append(f"| {case.description} | {concurrency} | {case.delay_ms:g} ms "
                        f"| FAILED ({s['runs_failed']} runs) | | | | | | |")
            continue
        window = s.get("request_window_s")
        cells = [
            case.description, concurrency, f"{case.delay_ms:g} ms", str(s["requests"]),
            fmt_s(s["wall_s"]),
            f"{s['ideal_s']:.3f} s" if "ideal_s" in s else "-",
            f"{s['wall_over_ideal']:.1f}x" if "wall_over_ideal" in s else "-",
            f"{window['median']:.3f} s" if window else "-",
            f"{s['window_over_ideal']:.2f}x" if "window_over_ideal" in s else "-",
            str(s.get("max_in_flight", "-")),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def derived(cases: list[Case], summaries: dict[str, dict[str, Any]], delay_ms: float,
            concurrencies: list[int]) -> dict[str, Any]:
    """Ratios between cases measured in the same interleaved rounds."""

    def median(key: str, metric: str = "wall_s") -> float | None:
        s = summaries.get(key, {})
        return s[metric]["median"] if metric in s else None

    out: dict[str, Any] = {}
    for kind in ("pytest", "library"):
        for c in concurrencies:
            loaded, idle = median(f"{kind}-c{c}-d{delay_ms:g}"), median(f"{kind}-c{c}-d0")
            if loaded is not None and idle is not None:
                out[f"{kind}_c{c}_delay_attributable_s"] = loaded - idle
                ideal = summaries[f"{kind}-c{c}-d{delay_ms:g}"].get("ideal_s")
                if ideal:
                    out[f"{kind}_c{c}_delay_attributable_over_ideal"] = (loaded - idle) / ideal
        if len(concurrencies) > 1:
            hi, lo = concurrencies[0], concurrencies[-1]
            fast, slow = median(f"{kind}-c{hi}-d{delay_ms:g}"), median(f"{kind}-c{lo}-d{delay_ms:g}")
            if fast and slow:
                out[f"{kind}_speedup_wall_c{hi}_vs_c{lo}"] = slow / fast
            wf = median(f"{kind}-c{hi}-d{delay_ms:g}", "request_window_s")
            ws = median(f"{kind}-c{lo}-d{delay_ms:g}", "request_window_s")
            if wf and ws:
                out[f"{kind}_speedup_window_c{hi}_vs_c{lo}"] = ws / wf
    inert, idle = median("pytest-inert"), median(f"pytest-c{concurrencies[0]}-d0")
    if inert is not None and idle is not None:
        out["plugin_fixed_cost_s"] = idle - inert
    return out


def run_phases(cases: list[Case], targets: dict[float, CountingTarget],
               projects: dict[str, Path]) -> dict[str, Any]:
    """One instrumented pytest run per loaded pytest case: where its wall time goes."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="prodready-bench-phases-") as tmp:
        (Path(tmp) / f"{PHASES_PLUGIN}.py").write_text(PHASES_PLUGIN_SOURCE)
        marks_file = Path(tmp) / "marks.json"
        for case in cases:
            if case.kind != "pytest":
                continue
            target = targets[case.delay_ms]
            extra = {"PRODREADY_BENCH_PHASES_OUT": str(marks_file),
                     "PYTHONPATH": os.pathsep.join(p for p in (tmp, os.environ.get("PYTHONPATH")) if p)}
            marks_file.unlink(missing_ok=True)
            started = time.monotonic()
            run = run_once(case, target, projects[case.key], extra, ["-p", PHASES_PLUGIN])
            if "error" in run or not marks_file.exists():
                out[case.key] = {"error": run.get("error", "no phase marks written")}
                continue
            hits_start = started + run.get("first_request_after_s", 0)
            marks = [(name, t - started) for name, t in json.loads(marks_file.read_text())]
            marks.append(("first request arrives (server side)", hits_start - started))
            marks.append(("last request done (server side)",
                          hits_start - started + run.get("request_window_s", 0)))
            marks.append(("process exited", run["wall_s"]))
            out[case.key] = {"wall_s": run["wall_s"], "requests": run["requests"],
                             "marks_s": sorted(marks, key=lambda m: m[1])}
    return out


def display_command(case: Case) -> str:
    """A case's command as a reader would type it (in the temp project directory)."""
    shown = {sys.executable: "python", str(Path(__file__).resolve()): "benchmarks/bench_passive_suite.py"}
    return shlex.join(shown.get(a, a) for a in case.command())


def fmt_load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    except (OSError, ValueError, subprocess.CalledProcessError):
        nproc = os.cpu_count() or 0
    versions: dict[str, str | None] = {}
    for dist in ("pytest-prodready", "pytest", "requests", "urllib3", "flask", "werkzeug"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        head, dirty = "", []
    plugins = sorted({ep.value.split(":")[0] for ep in metadata.entry_points(group="pytest11")})
    return {"nproc": nproc, "cpu": cpu, "platform": platform.platform(),
            "python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "versions": versions, "pytest11_plugins_installed": plugins,
            "git_head": head, "src_uncommitted": [line[3:] for line in dirty if line.strip()],
            "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
            "PYTHONDONTWRITEBYTECODE_in_measured_runs": run_env().get("PYTHONDONTWRITEBYTECODE")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="rounds; medians are reported (default 5)")
    parser.add_argument("--delay-ms", type=float, default=50, help="per-request delay (default 50)")
    parser.add_argument("--concurrency", default="8,1",
                        help="max_concurrency values, comma separated, highest first (default 8,1)")
    parser.add_argument("--no-library", action="store_true", help="skip the library-path cases")
    parser.add_argument("--phases", action="store_true",
                        help="add one instrumented pytest run per loaded case: a phase timeline")
    parser.add_argument("--pytest-args", default="",
                        help="extra arguments for every pytest run, e.g. '-p no:hypothesispytest'")
    parser.add_argument("--pycache-prefix", metavar="DIR", default=None,
                        help="let the measured processes cache bytecode (and pytest its assertion "
                             "rewrites) in DIR, even where PYTHONDONTWRITEBYTECODE is set")
    parser.add_argument("--timeline", action="store_true",
                        help="add one run of the first pytest case that records every request's start "
                             "and end (ms after the first request) and prints them")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument("--library-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.library_child:
        library_child()
        return 0
    if args.runs < 1 or args.delay_ms <= 0:
        parser.error("--runs must be >= 1 and --delay-ms > 0")
    concurrencies = sorted({int(c) for c in args.concurrency.split(",")}, reverse=True)
    global PYCACHE_PREFIX
    PYCACHE_PREFIX = str(Path(args.pycache_prefix).resolve()) if args.pycache_prefix else None

    sys.path.insert(0, str(REPO))  # the root conftest and tests.targets
    cases = cases_for(args.delay_ms, concurrencies, not args.no_library,
                      tuple(shlex.split(args.pytest_args)))
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    runs: dict[str, list[dict[str, Any]]] = {c.key: [] for c in cases}
    with serve_counting(args.delay_ms) as loaded, serve_counting(0) as idle, \
            tempfile.TemporaryDirectory(prefix="prodready-bench-") as tmp:
        targets = {args.delay_ms: loaded, 0.0: idle}
        projects: dict[str, Path] = {}
        for case in cases:
            project = projects[case.key] = Path(tmp) / case.key
            project.mkdir()
            (project / "prodready.toml").write_text(
                project_toml(targets[case.delay_ms].url, case.concurrency))
        # Untimed warm-up, one run per server: file cache, Flask's first-request costs.
        for delay in targets:
            first = next(c for c in cases if c.delay_ms == delay)
            run_once(first, targets[delay], projects[first.key])
        for round_no in range(1, args.runs + 1):
            for case in cases:
                run = run_once(case, targets[case.delay_ms], projects[case.key])
                runs[case.key].append(run)
                status = run.get("error", "")[:200] or run.get("pytest_summary") or ""
                print(f"round {round_no}/{args.runs} {case.key:<22} {run['wall_s']:6.2f} s "
                      f"{run['requests']:4d} requests  {status}", file=sys.stderr)
        phases = run_phases(cases, targets, projects) if args.phases else None
        timeline = None
        if args.timeline:
            first = cases[0]
            timeline = run_once(first, targets[first.delay_ms], projects[first.key], keep_hits=True)
            timeline["case"] = first.key
    load_after = os.getloadavg()
    machine_info = machine()

    summaries = {c.key: summarise(c, runs[c.key]) for c in cases}
    ratios = derived(cases, summaries, args.delay_ms, concurrencies)
    table = markdown_table(cases, summaries)
    command = shlex.join(["python", "benchmarks/bench_passive_suite.py",
                          *(sys.argv[1:] if argv is None else argv)])
    print(f"\n## Passive suite, {args.delay_ms:g} ms per request — {started:%Y-%m-%d %H:%M} UTC\n")
    print(table)
    print()
    for key, value in ratios.items():
        print(f"- {key}: {value:.2f}")
    print("\nRequest window, split (medians): preflight request, gap before the prefetch, "
          "prefetch of the rest")
    for case in cases:
        sm = summaries[case.key]
        if "rest_window_s" in sm:
            rest_ideal = f" (ideal {sm['rest_ideal_s'] * 1000:.0f} ms, " \
                f"{sm['rest_window_over_rest_ideal']:.2f}x)" if "rest_ideal_s" in sm else ""
            print(f"- {case.key}: {sm['first_request_s']['median'] * 1000:.0f} ms + "
                  f"{sm['gap_after_first_request_s']['median'] * 1000:.0f} ms + "
                  f"{sm['rest_window_s']['median'] * 1000:.0f} ms{rest_ideal}")
    if phases:
        print("\nPhase timelines (one instrumented run each, seconds since spawn):")
        for key, ph in phases.items():
            if "error" in ph:
                print(f"\n{key}: FAILED: {ph['error'][:300]}")
                continue
            print(f"\n{key} (wall {ph['wall_s']:.2f} s, {ph['requests']} requests)")
            for name, at in ph["marks_s"]:
                print(f"  {at:6.3f}  {name}")
    if timeline and timeline.get("timeline_ms"):
        print(f"\nRequest timeline of one {timeline['case']} run (ms after the first request arrives):")
        for h in timeline["timeline_ms"]:
            print(f"  {h['start']:7.1f} -> {h['end']:7.1f}  {h['method']:<7} {h['path']}")
    nproc = machine_info["nproc"] or 1
    noisy = max(load_before[0], load_after[0]) > nproc / 2
    print(f"\nload average (1, 5, 15 min) before {fmt_load(load_before)}, after {fmt_load(load_after)}"
          f" on {nproc} CPUs")
    if noisy:
        print("WARNING: the machine was busy (1-min load above half the CPUs); other processes "
              "competed for the CPU and these figures are inflated. Re-run when it is quiet.")

    result = {
        "benchmark": "passive_suite",
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "settings": {"runs": args.runs, "delay_ms": args.delay_ms, "concurrency": concurrencies,
                     "pytest_args": args.pytest_args, "pycache_prefix": PYCACHE_PREFIX,
                     "warmup_runs": len(targets), "order": "interleaved: every case once per round"},
        "machine": machine_info,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "noisy": noisy,
        "cases": [{"key": c.key, "kind": c.kind, "description": c.description,
                   "concurrency": c.concurrency, "delay_ms": c.delay_ms,
                   "command": display_command(c),
                   "summary": summaries[c.key], "runs": runs[c.key]} for c in cases],
        "ratios": ratios,
        "phases": phases,
        "timeline": timeline,
        "markdown_table": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written: {args.output}")
    failed = [k for k, s in summaries.items() if s["runs_failed"]]
    if failed:
        print(f"FAILED runs in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
