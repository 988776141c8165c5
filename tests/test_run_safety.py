"""Run-level safety rules (PRODUCT.md, "Safety rules"), end to end against real loopback servers.

- one request budget per run, whatever the number of xdist workers, retries charged;
- a request a correct target accepts (the signed webhook) sent once per run, never retried;
- a target that is down, hangs, resets, speaks SSH or TLS is one run-level message within
  about one timeout, not a wall of verdicts;
- a target rate-limiting the checker: a bounded run, "cannot judge" errors, no verdicts;
- Ctrl-C ends the run at once, without a half-written report;
- secrets never in node ids, the cache, JUnit, reports, nor in what a user's own test prints;
- the built-in suite's join rule, marker fix= and word-boundary cuts;
- a self-signed HTTPS target is judged, but no credential goes over unverified TLS.

The targets are in tests/targets/downtargets.py (raw sockets, Python ssl, Flask apps);
`pytest --prodready` runs in subprocesses (pytester), bounded by generous deadlines
derived from timeout_s, never by tight wall-clock figures.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from conftest import METRICS_TOKEN_ENV, TOKEN_ENV

from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import BudgetExceeded
from pytest_prodready.target import Probe, Target
from tests.targets import downtargets as dt
from tests.targets.webapp import METRICS_TOKEN, VALID_TOKEN, Served

TIMEOUT_S = 2
# A down target is one message within about one timeout; pytest's own start-up (and an
# xdist worker's) on a loaded 2-core machine is the slack.
DOWN_BOUND_S = 6 * TIMEOUT_S + 15
GITHUB_SECRET = "gh-run-safety-secret-7Yq2Lm9Xc4"
GITHUB_SECRET_ENV = "PRODREADY_TEST_GITHUB_SECRET"
URL_SECRET = "SECRETKEY123456"


@pytest.fixture(autouse=True)
def _lean_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unrelated plugins and the outer PRODREADY_* settings stay out of the runs (as in
    tests/test_plugin.py); the secrets the configs name are set."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:benchmark")
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON",
                 "PRODREADY_SENSITIVE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
    monkeypatch.setenv(METRICS_TOKEN_ENV, METRICS_TOKEN)
    monkeypatch.setenv(GITHUB_SECRET_ENV, GITHUB_SECRET)


# -- helpers -------------------------------------------------------------------------------
def write_config(pytester: pytest.Pytester, url: str, top: str = "", tables: str = "") -> None:
    """prodready.toml: top-level keys first, then tables (TOML puts later keys in a table)."""
    pytester.makefile(".toml", prodready=f'base_url = "{url}"\n{top}\n{tables}\n')


AUTH_TABLES = f"""
[auth]
token_env = "{TOKEN_ENV}"

[metrics]
path = "/metrics"
token_env = "{METRICS_TOKEN_ENV}"
"""


def endpoints(prefix: str, count: int) -> str:
    return json.dumps([f"{prefix}{i}" for i in range(count)])


def run(pytester: pytest.Pytester, *args: str, bound_s: float = 300) -> tuple[pytest.RunResult, float]:
    """`pytest *args` in a subprocess; (result, wall seconds). Killed after `bound_s`."""
    start = time.monotonic()
    result = pytester.runpytest_subprocess(*args, timeout=bound_s)
    return result, time.monotonic() - start


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def records(report: dict[str, Any], check_id: str | None = None) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if check_id is None or c["id"] == check_id]


def verdict_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "FAILED" in line or "ERROR" in line]


@pytest.fixture
def flask_app() -> Iterator[Callable[..., dt.App]]:
    """Factory: flask_app(make, tls=False) serves make(log) and returns its URL and log."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def start(make: Callable[[list[dt.Seen]], Any], *, tls: bool = False,
                  stop: threading.Event | None = None) -> dt.App:
            log: list[dt.Seen] = []
            url = stack.enter_context(dt.serve_flask(make(log), tls=tls, stop=stop))
            return dt.App(url, log)

        yield start


# -- 1. one request budget per run ----------------------------------------------------------
BUDGET = 5


@pytest.mark.parametrize("workers", ["0", "2", "4"])
def test_request_budget_is_per_run_under_xdist(pytester: pytest.Pytester,
                                               flask_app: Callable[..., dt.App], workers: str) -> None:
    """request_budget = 5 is five requests received, with one process or four (it was 5,
    11 and 19 when each worker counted its own)."""
    app = flask_app(dt.counting_app)
    write_config(pytester, app.url, f"request_budget = {BUDGET}\ntimeout_s = {TIMEOUT_S}\n"
                                     f"protected = {endpoints('/api/r', 30)}", AUTH_TABLES)
    result, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "-p", "xdist", "-n", workers)
    out = result.stdout.str()
    if workers != "0":
        assert f"created: {workers}/{workers} workers" in out, out[-3000:]
    assert 2 <= len(app.log) <= BUDGET, (len(app.log), app.paths(), out[-3000:])
    assert f"request budget of {BUDGET} requests reached" in out


def test_request_budget_charges_retries_under_xdist(pytester: pytest.Pytester,
                                                    flask_app: Callable[..., dt.App]) -> None:
    """Every path answers 503 once, then 200: each probe costs two requests, both charged."""
    app = flask_app(lambda log: dt.counting_app(log, first_503=True))
    write_config(pytester, app.url, f"request_budget = {BUDGET}\ntimeout_s = {TIMEOUT_S}\n"
                                     f"protected = {endpoints('/api/r', 30)}", AUTH_TABLES)
    result, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "-p", "xdist", "-n", "2")
    out = result.stdout.str()
    assert len(app.log) <= BUDGET, (len(app.log), app.paths(), out[-3000:])
    paths = app.paths()
    assert any(paths.count(p) == 2 for p in paths), paths  # a retry really happened


def test_every_retry_is_charged_to_the_budget(flask_app: Callable[..., dt.App]) -> None:
    """In the library: what the budget counts is what the target received, request for request."""
    app = flask_app(lambda log: dt.counting_app(log, first_503=True))
    settings = Settings(values={**DEFAULTS, "base_url": app.url, "request_budget": BUDGET,
                                "timeout_s": TIMEOUT_S}, secrets={}, sources={})
    with Target(settings) as target:
        first, second = target.fetch(Probe.get("/api/a")), target.fetch(Probe.get("/api/b"))
        assert (first.status, second.status) == (401, 401)  # each after one 503
        assert target.budget.spent == len(app.log) == 4
        with pytest.raises(BudgetExceeded):
            target.fetch(Probe.get("/api/c"))  # its first attempt is the 5th request, its retry a 6th
        assert target.budget.spent == len(app.log) == BUDGET


# -- 2. a request a correct target accepts: once per run ------------------------------------
WEBHOOK_TABLES = f"""
[webhooks.gh]
path = "{dt.GITHUB_HOOK_PATH}"
scheme = "github"
secret_env = "{GITHUB_SECRET_ENV}"
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_signed_webhook_is_delivered_once_per_run(pytester: pytest.Pytester,
                                                  flask_app: Callable[..., dt.App], workers: str) -> None:
    """The receiver answers 503 to the first valid delivery: it is not retried, and no other
    worker sends its own; the checks that need it share the one answer."""
    counts: dict[str, int] = {}
    app = flask_app(lambda log: dt.github_receiver(log, counts, GITHUB_SECRET))
    write_config(pytester, app.url, f"timeout_s = {TIMEOUT_S}", WEBHOOK_TABLES)
    result, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "-p", "xdist", "-n", workers,
                    "--prodready-only", "webhook", "-v", "--prodready-report", "out.json")
    out = result.stdout.str()
    hook_posts = [s for s in app.log if s.path == dt.GITHUB_HOOK_PATH]
    assert counts["valid"] == 1, (counts, [s.headers for s in hook_posts], out[-3000:])
    if workers == "2":
        # Both workers ran a webhook check that needs the positive control.
        assert {"[gw0]", "[gw1]"} <= set(re.findall(r"\[gw\d\]", out)), out
    valid = records(load_json(pytester.path / "out.json"), "webhook.valid_accepted")
    assert [r["outcome"] for r in valid] == ["failed"], valid  # 503: the endpoint errored
    assert "503" in valid[0]["message"]


# -- 3. a target that is effectively down ---------------------------------------------------
DOWN: dict[str, tuple[Callable[[], AbstractContextManager[dt.Raw]], str]] = {
    "all_503": (lambda: dt.serve_raw(dt.answer_503), "answers 503 to everything"),
    "reset": (lambda: dt.serve_raw(dt.reset), "connection reset"),
    "hang": (lambda: dt.serve_raw(dt.hang), f"no response within {TIMEOUT_S}s"),
    "ssh": (lambda: dt.serve_raw(dt.ssh_banner), "speaks SSH"),
    "http_to_tls": (dt.serve_https_page, "did you mean https://"),
    "https_to_plain": (lambda: dt.serve_raw(dt.plain_http, scheme="https"), "did you mean http://?"),
}


@pytest.mark.parametrize("case", list(DOWN))
def test_down_target_is_one_run_level_message(pytester: pytest.Pytester, case: str) -> None:
    serve_it, expected = DOWN[case]
    with serve_it() as raw:
        write_config(pytester, raw.url, f"timeout_s = {TIMEOUT_S}\nmax_concurrency = 8\n"
                                        f"protected = {endpoints('/api/r', 40)}\n"
                                        'health = ["/api/health"]', AUTH_TABLES)
        result, elapsed = run(pytester, "--prodready", "-p", "no:cacheprovider", "-p", "no:xdist",
                              "-rA", bound_s=DOWN_BOUND_S * 3)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out[-3000:]  # pytest.exit(returncode=2)
    assert expected in out, out[-3000:]
    assert len(verdict_lines(out)) <= 2, verdict_lines(out)[:20]
    assert "Traceback" not in out + result.stderr.str()
    assert elapsed < DOWN_BOUND_S, (elapsed, out[-2000:])


# -- 4. a target that rate-limits the checker -----------------------------------------------
RATE_LIMIT_BOUND_S = 50  # well under a minute: 3 x timeout_s of back-off, start-up, 300 items


def _refused(exchange: dict[str, Any]) -> bool:
    """An exchange the limiter answered 429, or that the run no longer sent because of it."""
    response = exchange["response"]
    return bool(response["status"] == 429 or "rate-limiting the checker" in response["error"])


RateLimitedRun = tuple[dict[str, Any], float, str]


@pytest.fixture
def rate_limited_run(pytester: pytest.Pytester, flask_app: Callable[..., dt.App],
                     request: pytest.FixtureRequest) -> RateLimitedRun:
    """429 + Retry-After (60 s, or the parameter) to everything after 20 requests, 300
    protected endpoints: (report, wall seconds, stdout)."""
    retry_after = getattr(request, "param", "60")
    app = flask_app(lambda log: dt.rate_limited_app(log, limit=20, retry_after=retry_after))
    write_config(pytester, app.url, f"timeout_s = {TIMEOUT_S}\n"
                                     f"protected = {endpoints('/api/r', 300)}", AUTH_TABLES)
    # --tb=no: the time measured is the run's, not the rendering of ~1,500 tracebacks.
    result, elapsed = run(pytester, "--prodready", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "-q", "--tb=no", "--prodready-report", "out.json", bound_s=180)
    return load_json(pytester.path / "out.json"), elapsed, result.stdout.str()


# Retry-After: 60 is longer than any exchange deadline (never waited for); 1 s is waited
# for, until the run's allowance (3 x timeout_s of sleeping in all) is spent.
@pytest.mark.parametrize("rate_limited_run", ["60", "1"], indirect=True)
def test_rate_limited_checker_ends_bounded_and_cannot_judge(rate_limited_run: RateLimitedRun) -> None:
    """The back-off is bounded per run, and every check left without an answer is 'cannot
    judge' saying why, never a verdict."""
    report, elapsed, out = rate_limited_run
    assert elapsed < RATE_LIMIT_BOUND_S, (elapsed, out[-3000:])
    sweep = records(report, "auth.required")
    assert len(sweep) == 300
    # 20 requests were answered (two by the preflight): at most 18 endpoints got a verdict.
    judged = [r for r in sweep if r["outcome"] in ("passed", "failed")]
    assert len(judged) <= 20, [r["message"] for r in judged]
    assert all(not any(_refused(e) for e in r["evidence"]) for r in judged)
    left = [r for r in sweep if r not in judged]
    assert len(left) >= 280 and all(r["outcome"] == "error" for r in left), {r["outcome"] for r in left}
    assert all(re.search(r"rate[- ]limit", r["message"]) for r in left), \
        sorted({r["message"] for r in left})[:5]
    # Every other check that got nothing but refusals says the same.
    # (A skip is no verdict either: the jwt checks skip a token that is not a JWT.)
    unanswered = [r for r in report["checks"] if r["outcome"] != "skipped"
                  and r["evidence"] and all(_refused(e) for e in r["evidence"])]
    assert len(unanswered) > len(left)  # auth.invalid_token_rejected, cors.* ... too
    for record in unanswered:
        assert record["outcome"] == "error", record
        assert re.search(r"rate[- ]limit", record["message"]), record["message"]


def test_rate_limited_scans_are_not_passed_on_a_fraction(rate_limited_run: RateLimitedRun) -> None:
    report, _, _ = rate_limited_run
    partial = [(r["id"], r["outcome"], r["message"]) for r in report["checks"]
               if r["outcome"] in ("passed", "failed")
               and sum(map(_refused, r["evidence"])) > len(r["evidence"]) // 2]
    assert partial == []


# -- 5. Ctrl-C -----------------------------------------------------------------------------
def test_ctrl_c_ends_the_run_at_once_without_a_half_written_report(
        pytester: pytest.Pytester, flask_app: Callable[..., dt.App]) -> None:
    """SIGINT while 8 probes hang on a 10 s timeout: out within seconds, not at their deadline."""
    stop = threading.Event()
    app = flask_app(lambda log: dt.slow_api_app(log, stop), stop=stop)
    write_config(pytester, app.url, "timeout_s = 10\nmax_concurrency = 8\n"
                                     f"protected = {endpoints('/api/slow', 60)}", AUTH_TABLES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--prodready", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:hypothesispytest", "-p", "no:benchmark", "--prodready-report", "out.json"],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # SIGINT once the probes hang (at least 2 s after start): mid-prefetch, not at import.
        started = time.monotonic()
        until = started + 60
        while not any(p.startswith("/api/slow") for p in app.paths()) and time.monotonic() < until:
            time.sleep(0.05)
        assert any(p.startswith("/api/slow") for p in app.paths()), app.paths()
        time.sleep(max(0.0, started + 2 - time.monotonic()))
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the process group
        signalled = time.monotonic()
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"still running 15 s after SIGINT:\n{out.decode()[-2000:]}")
        exited_after = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode(errors="replace")
    assert exited_after < 5, (exited_after, text[-2000:])
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (proc.returncode, text[-2000:],
                                                            err.decode()[-2000:])
    report = pytester.path / "out.json"
    if report.exists():
        load_json(report)  # valid JSON, or no file at all
    assert not [p.name for p in pytester.path.iterdir() if p.name.startswith("out.json.")]


# -- 6. masked node ids --------------------------------------------------------------------
def _everything_written(root: Path, skip: set[str]) -> str:
    """Every file under root (the cache, JUnit, the report...), but the config itself."""
    texts = []
    for path in root.rglob("*"):
        if path.is_file() and path.name not in skip:
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


def _health_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if re.match(r"\S*endpoint_ok\[", line)]


def test_a_key_in_a_configured_url_never_reaches_node_ids_reports_or_the_cache(
        pytester: pytest.Pytester, webapp: Callable[..., Served]) -> None:
    app = webapp("health_500")  # health fails: its id lands in lastfailed
    health = f"/api/health?api_key={URL_SECRET}"
    write_config(pytester, app.url, f'health = ["{health}"]\ntimeout_s = {TIMEOUT_S}', AUTH_TABLES)
    collected, _ = run(pytester, "--prodready", "--collect-only", "-q")
    assert "health.endpoint_ok[/api/health?api_key=" in collected.stdout.str()
    first, _ = run(pytester, "--prodready", "-v", "--junitxml=j.xml", "--prodready-report", "out.json")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    shown = _health_lines(first)
    assert len(shown) == 1 and "FAILED" in shown[0], first.stdout.str()
    assert any(f"{s.method} {s.path}" == f"GET {health}" for s in app.log)  # really asked for
    lastfailed = json.loads((pytester.path / ".pytest_cache/v/cache/lastfailed").read_text())
    failed_health = [nodeid for nodeid in lastfailed if "endpoint_ok[" in nodeid]
    assert len(failed_health) == 1, lastfailed
    nodeids = json.loads((pytester.path / ".pytest_cache/v/cache/nodeids").read_text())
    assert failed_health[0] in nodeids
    again, _ = run(pytester, "--prodready", "--lf", "-v")
    assert "run-last-failure: rerun previous" in again.stdout.str(), again.stdout.str()
    rerun = _health_lines(again)
    assert [line.split()[0] for line in rerun] == [shown[0].split()[0]], again.stdout.str()
    assert "FAILED" in rerun[0]
    outputs = [collected.stdout.str(), collected.stderr.str(), first.stdout.str(),
               first.stderr.str(), again.stdout.str(), again.stderr.str()]
    for name in ("j.xml", "out.json"):
        assert (pytester.path / name).exists(), name
    written = _everything_written(pytester.path, skip={"prodready.toml"})
    for text in [*outputs, written]:
        assert URL_SECRET not in text


# -- 7. a user's own test that prints the secrets the plugin knows ---------------------------
LEAKY_TEST = f"""
import logging
import os
import sys


def test_leaks(prodready_target):
    token = os.environ["{TOKEN_ENV}"]
    header = "Bearer " + token
    print("the token is", token)
    print("to stderr:", token, file=sys.stderr)
    logging.getLogger("user.code").warning("calling with %s", header)
    assert "Bearer " + token is None
"""


@pytest.fixture
def leaky_run(pytester: pytest.Pytester, good_app: Served) -> tuple[pytest.RunResult, str]:
    """The leaky test, with every output pytest has switched on (JUnit with the captured
    output and logs too): (result, JUnit XML)."""
    write_config(pytester, good_app.url, f"timeout_s = {TIMEOUT_S}", AUTH_TABLES)
    pytester.makepyfile(test_leaky=LEAKY_TEST)
    result, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "-vv", "--tb=long", "-l",
                    "-rA", "--junitxml=j.xml", "-o", "junit_logging=all", "test_leaky.py")
    return result, (pytester.path / "j.xml").read_text(encoding="utf-8")


def test_a_users_test_printing_a_known_secret_is_masked(leaky_run: tuple[pytest.RunResult, str]) -> None:
    result, junit = leaky_run
    out, err = result.stdout.str(), result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    # What pytest printed is there (masked), not dropped: the assertion, the -l locals, the
    # captured stdout, stderr and log sections.
    for shown in ("assert ('Bearer ' + '****') is None", "token      = '****'",
                  "the token is ****", "to stderr: ****", "calling with Bearer ****"):
        assert shown in out, (shown, out)
    for shown in ("assert ('Bearer ' + '****') is None", "the token is ****", "to stderr: ****",
                  "calling with Bearer ****"):
        assert shown in junit, (shown, junit)
    for where, text in (("stdout", out), ("stderr", err), ("j.xml", junit)):
        assert VALID_TOKEN not in text, where


def test_a_masked_failure_keeps_its_one_line_headline(leaky_run: tuple[pytest.RunResult, str]) -> None:
    import xml.etree.ElementTree as ET

    result, junit = leaky_run
    (summary,) = [line for line in result.stdout.lines
                  if line.startswith("FAILED test_leaky.py::test_leaks")]
    assert summary.endswith("AssertionError: assert ('Bearer ' + '****') is None"), summary
    (failure,) = ET.fromstring(junit).iter("failure")
    assert failure.get("message", "").startswith("AssertionError"), failure.get("message")
    assert "def test_leaks" not in failure.get("message", "")


# -- 8. the built-in suite joins only without paths, or when asked -------------------------------
PLAIN_TEST = """
def test_x():
    assert True
"""


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line]


def test_the_built_in_suite_joins_without_paths_or_with_the_option(
        pytester: pytest.Pytester, good_app: Served) -> None:
    write_config(pytester, good_app.url, f"timeout_s = {TIMEOUT_S}", AUTH_TABLES)
    (pytester.path / "tests_dir").mkdir()
    (pytester.path / "tests_dir" / "test_x.py").write_text(PLAIN_TEST)
    only_file, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "--collect-only", "-q",
                       "tests_dir/test_x.py")
    assert _collected(only_file) == ["tests_dir/test_x.py::test_x"], only_file.stdout.str()
    no_paths, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "--collect-only", "-q")
    ids = _collected(no_paths)
    assert "tests_dir/test_x.py::test_x" in ids
    assert any(i.startswith("prodready::") for i in ids), no_paths.stdout.str()
    both, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "--collect-only", "-q",
                  "--prodready-suite", "tests_dir/test_x.py")
    assert sorted(_collected(both)) == sorted(ids)
    # And the file alone really runs alone: one test, no suite item ran.
    ran, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "-v", "tests_dir/test_x.py")
    ran.assert_outcomes(passed=1)
    assert "prodready::" not in ran.stdout.str()


# -- 9. marker fix= and word-boundary cuts --------------------------------------------------
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")
LONG_MESSAGE = " ".join(WORDS[i % len(WORDS)] for i in range(400))[:2000]
MARKED_TEST = f"""
import pytest


@pytest.mark.prodready(severity="high", fix="Rotate the key")
def test_key_rotated():
    assert False, {LONG_MESSAGE!r}
"""


def test_marker_fix_is_the_remediation_and_long_messages_are_cut_at_a_word(
        pytester: pytest.Pytester, good_app: Served) -> None:
    write_config(pytester, good_app.url, f"timeout_s = {TIMEOUT_S}", AUTH_TABLES)
    pytester.makepyfile(test_marked=MARKED_TEST)
    result, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "test_marked.py",
                    "--prodready-report", "out.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    (record,) = [r for r in records(load_json(pytester.path / "out.json"))
                 if r["id"].endswith("test_key_rotated")]
    assert record["outcome"] == "failed"
    assert record["severity"] == "high"
    assert record["remediation"] == "Rotate the key"
    message = record["message"]
    assert len(message) < len(LONG_MESSAGE) and message.endswith("…"), message
    kept = message[:-1]
    start = kept.index("alpha bravo")
    kept = kept[start:]
    assert LONG_MESSAGE.startswith(kept)
    assert LONG_MESSAGE[len(kept)] == " ", (kept[-20:], LONG_MESSAGE[len(kept):len(kept) + 20])


# -- 10. a self-signed HTTPS target --------------------------------------------------------
FETCH_WITH_CREDENTIAL = """
import pytest
from pytest_prodready.target import Probe


@pytest.mark.prodready(severity="high")
def test_credentialed_fetch(prodready_target):
    exchange = prodready_target.fetch(Probe.get("/x", credential="auth.token_env"))
    assert exchange.status is None, exchange.status
    assert "not sent: the certificate does not verify" in exchange.error, exchange.error
"""


@pytest.fixture
def self_signed_run(pytester: pytest.Pytester,
                    flask_app: Callable[..., dt.App]) -> tuple[pytest.RunResult, dict[str, Any], dt.App]:
    """The built-in suite and a user's credentialed fetch against an HTTPS target whose
    certificate is self-signed, without tls.ca_bundle."""
    app = flask_app(dt.counting_app, tls=True)
    write_config(pytester, app.url, f"timeout_s = {TIMEOUT_S}\n"
                                     'protected = ["/api/agents"]', AUTH_TABLES)
    pytester.makepyfile(test_fetch=FETCH_WITH_CREDENTIAL)
    result, _ = run(pytester, "--prodready", "-p", "no:cacheprovider", "--prodready-suite",
                    "test_fetch.py", "--prodready-report", "out.json", "-rA")
    return result, load_json(pytester.path / "out.json"), app


def test_self_signed_target_is_judged(
        self_signed_run: tuple[pytest.RunResult, dict[str, Any], dt.App]) -> None:
    """Not aborted: tls.cert_valid names the defect, and the rest is judged (unverified)."""
    result, report, app = self_signed_run
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    assert "prodready scorecard" in out
    (cert,) = records(report, "tls.cert_valid")
    assert cert["outcome"] == "failed"
    assert re.search("self-signed|unable to get local issuer certificate", cert["message"]), cert
    (nosniff,) = records(report, "headers.content_type_options")
    assert nosniff["outcome"] in ("passed", "failed"), nosniff
    assert any(s.path == "/" for s in app.log)  # the page was really fetched (unverified)


def test_self_signed_target_gets_no_credential(
        self_signed_run: tuple[pytest.RunResult, dict[str, Any], dt.App]) -> None:
    _, report, app = self_signed_run
    # Only made-up tokens went over the unverified connection (auth.invalid_token_rejected's
    # probes carry no secret of the run), never the configured one.
    sent_auth = {s.headers.get("Authorization") for s in app.log if "Authorization" in s.headers}
    assert sent_auth and all(v.startswith(("Bearer prodready-invalid-token", "Bearer ey")) for v in sent_auth)
    assert not any(VALID_TOKEN in json.dumps(s.headers) for s in app.log)
    (invalid_token,) = records(report, "auth.invalid_token_rejected")
    assert invalid_token["outcome"] in ("passed", "failed"), invalid_token
    (custom,) = [r for r in records(report) if r["id"].endswith("test_credentialed_fetch")]
    assert custom["outcome"] == "passed", custom


def test_no_credential_over_unverified_tls_after_an_anonymous_probe(
        flask_app: Callable[..., dt.App], target_for: Callable[..., Target]) -> None:
    """In the library, the order that matters: a credentialed probe before any other is
    refused; the same after an anonymous probe found the certificate untrusted must be too."""
    app = flask_app(dt.counting_app, tls=True)
    target = target_for(app.url, timeout_s=TIMEOUT_S)
    before = target.fetch(Probe.get("/api/before", credential="auth.token_env"))
    assert before.status is None and "the certificate does not verify" in before.error
    anonymous = target.fetch(Probe.get("/"))
    assert anonymous.status == 200 and "without certificate verification" in anonymous.note
    after = target.fetch(Probe.get("/api/after", credential="auth.token_env"))
    assert [s.path for s in app.log] == ["/"], [(s.path, s.headers.get("Authorization")) for s in app.log]
    assert after.status is None and "the certificate does not verify" in after.error
