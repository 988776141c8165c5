"""perf.latency_budget on Locust's distributed mode (locustrun.py, locustfile.py): a real
Locust master and real workers, as subprocesses, against a target with a known delay in its
own process. Locust is never imported here (it would monkey-patch this process for gevent):
the tests only start it, as the check does."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.perf import FAMILY, Distribution
from pytest_prodready.config import Settings
from pytest_prodready.exceptions import ConfigError
from pytest_prodready.target import Target
from tests.targets.limiters import Delayed, delayed

REQUESTS, WARMUP = 120, 5


@pytest.fixture(scope="module")
def slower() -> Iterator[Delayed]:
    """100 ms +- 10 ms: 5% of it is above what a loaded 2-core machine adds to a sample."""
    with delayed(100, 10) as served:
        yield served


def measure(target: Target, subject: str = "GET /slow") -> tuple[Result, Distribution]:
    result = run_check("perf.latency_budget", target, subject)
    facts = [f for f in result.facts if isinstance(f, Distribution)]
    assert facts or result.outcome == "error", result.message
    return result, facts[0] if facts else None  # type: ignore[return-value]


def entry(runner: str, **extra: Any) -> dict[str, Any]:
    return {"/slow": {"requests": REQUESTS, "warmup": WARMUP, "concurrency": 4, "runner": runner, **extra}}


def test_same_verdict_and_p95_as_in_process(slower: Delayed, target_for: Callable[..., Target]) -> None:
    """Master + 2 workers on loopback against the in-process mode on the same endpoint: the
    same verdicts, p95 within 5%, and exactly requests + warm-up requests sent and charged."""
    before = slower.counts().get("/slow", 0)
    inproc, ours = measure(target_for(slower.url, latency=entry("in-process", p95_ms=300)))
    assert inproc.outcome == "passed", inproc.message
    mid = slower.counts()["/slow"]
    assert mid - before == REQUESTS + WARMUP

    target = target_for(slower.url, latency=entry("locust", p95_ms=300))
    passed, theirs = measure(target)
    assert passed.outcome == "passed", passed.message
    assert "Locust distributed mode: master + 2 workers" in passed.message
    # The counting target: exactly the samples and the warm-up, split over two workers (125
    # is odd: the shares still add up), all charged to the run's budget before the start.
    assert slower.counts()["/slow"] - mid == REQUESTS + WARMUP
    assert target.budget.spent == REQUESTS + WARMUP
    assert len(theirs.samples_ms) == REQUESTS and theirs.warmup == WARMUP and theirs.errors == 0
    assert theirs.runner.startswith("Locust") and theirs.to_dict()["runner"] == theirs.runner
    assert abs(theirs.p(95) - ours.p(95)) <= 0.05 * ours.p(95), (theirs.p(95), ours.p(95))
    assert theirs.p(95) >= 100 + 10 * 0.9 - 1  # never below the delays the server added

    failed, _ = measure(target_for(slower.url, latency=entry("locust", p95_ms=90)))
    assert failed.outcome == "failed", failed.message
    assert "over budget: p95" in failed.message
    # The pytest process never imported Locust (nor gevent through it).
    assert "locust" not in sys.modules and "gevent" not in sys.modules


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_started_elsewhere_joins_the_run(slower: Delayed, target_for: Callable[..., Target]) -> None:
    """expect_workers above workers: the master waits for a worker started by
    `prodready locust-worker` (as on another machine), sends it the measurement, and takes
    its raw samples."""
    port = _free_port()
    target = target_for(slower.url, latency=entry("locust", requests=40, warmup=2),
                        perf={"locust": {"workers": 1, "expect_workers": 2, "bind_port": port}})
    results: list[tuple[Result, Distribution]] = []
    run = threading.Thread(target=lambda: results.append(measure(target)))
    run.start()
    time.sleep(1.0)
    remote = subprocess.Popen([sys.executable, "-m", "pytest_prodready.cli", "locust-worker",
                               "--master-host", "127.0.0.1", "--master-port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run.join(timeout=120)
        assert not run.is_alive()
        remote.wait(timeout=30)  # it leaves when the master quits
    finally:
        remote.kill()
        out = remote.communicate()[0]
    result, dist = results[0]
    assert result.outcome == "passed", (result.message, out)
    assert "master + 2 workers (1 started here)" in result.message
    assert len(dist.samples_ms) == 40
    assert "--worker --master-host 127.0.0.1" in out


def test_missing_workers_end_in_cannot_judge_not_a_hang(slower: Delayed,
                                                        target_for: Callable[..., Target]) -> None:
    target = target_for(slower.url, latency=entry("locust", requests=10, warmup=0),
                        perf={"locust": {"workers": 1, "expect_workers": 2, "bind_port": _free_port(),
                                         "max_seconds": 5}})
    started = time.monotonic()
    result, _ = measure(target)
    assert result.outcome == "error", result.message
    assert "0 of 10 samples" in result.message and "Master log" in result.message
    assert time.monotonic() - started < 60


def test_redirects_are_not_followed(slower: Delayed, target_for: Callable[..., Target]) -> None:
    """The outside sender follows no redirect (only our client knows where a credential may
    go): a 302 to another server is a sample of the 302, and the other server sees nothing."""
    with delayed(1, 0) as other:
        moved = f"/moved?to=http://localhost:{other.url.rsplit(':', 1)[1]}/slow"
        target = target_for(slower.url, latency={moved: {"requests": 20, "warmup": 0, "concurrency": 2,
                                                        "runner": "locust"}})
        result, dist = measure(target, f"GET {moved}")
        assert result.outcome == "passed", result.message
        assert len(dist.samples_ms) == 20
        assert other.counts() == {}


def test_the_config_is_checked_before_any_process_starts() -> None:
    def settings(**values: Any) -> Settings:
        return Settings(values={"max_concurrency": 4, **values}, secrets={}, sources={})

    with pytest.raises(ConfigError, match="every worker needs at least one user"):
        FAMILY.validate(settings(latency={"/x": {"runner": "locust", "concurrency": 1}}))
    with pytest.raises(ConfigError, match="set bind_port"):
        FAMILY.validate(settings(latency={"/x": {"runner": "locust", "concurrency": 4}},
                                 perf={"locust": {"workers": 1, "expect_workers": 3}}))
    with pytest.raises(ConfigError, match="below workers"):
        FAMILY.validate(settings(latency={"/x": {"runner": "locust", "concurrency": 4}},
                                 perf={"locust": {"workers": 3, "expect_workers": 2, "bind_port": 5557}}))


def test_the_budget_is_taken_whole_before_locust_starts(slower: Delayed,
                                                        target_for: Callable[..., Target]) -> None:
    before = slower.counts().get("/slow", 0)
    result, _ = measure(target_for(slower.url, request_budget=50, latency=entry("locust")))
    assert result.outcome == "error" and "takes 125 requests" in result.message
    assert slower.counts().get("/slow", 0) == before


def test_coexists_with_locusts_own_pytest_plugin(pytester: pytest.Pytester, slower: Delayed) -> None:
    """Installed, Locust registers a pytest plugin with a --host option; with both plugins
    loaded, --host is Locust's, the distributed check runs, and the pytest process never
    imports Locust or gevent."""
    pytester.makefile(".toml", prodready=(
        f'base_url = "{slower.url}"\nmax_concurrency = 4\n\n[latency]\n'
        f'"/slow" = {{ requests = 30, warmup = 2, concurrency = 2, runner = "locust", p95_ms = 300 }}\n'))
    pytester.makeconftest(
        "import sys\n"
        "def pytest_sessionfinish(session):\n"
        "    assert session.config.pluginmanager.has_plugin('locust')\n"
        "    print('LOCUST-OPTION', session.config.getoption('--host'))\n"
        "    print('IMPORTED', 'locust' in sys.modules, 'gevent' in sys.modules)\n")
    result = pytester.runpytest_subprocess("--prodready", "--prodready-active", "--prodready-only",
                                           "perf", "--host", "http://unused.example", "-s",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    out = result.stdout.str()
    assert "LOCUST-OPTION http://unused.example" in out
    assert "IMPORTED False False" in out


def test_without_locust_installed_the_check_says_how_to_get_it(
        pytester: pytest.Pytester, slower: Delayed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without the extra: a sitecustomize hides the installed Locust from the run."""
    hidden = tmp_path / "hide"
    hidden.mkdir()
    # None in sys.modules: "not importable" to both import and importlib.util.find_spec.
    (hidden / "sitecustomize.py").write_text(
        "import sys\nsys.modules['locust'] = None\n")
    monkeypatch.setenv("PYTHONPATH", str(hidden))
    # Locust's own pytest plugin is not there either (its distribution is what is hidden).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makefile(".toml", prodready=(
        f'base_url = "{slower.url}"\nmax_concurrency = 4\n\n[latency]\n'
        f'"/slow" = {{ requests = 10, concurrency = 2, runner = "locust" }}\n'))
    result = pytester.runpytest_subprocess("--prodready", "--prodready-active", "--prodready-only", "perf",
                                           "-p", "no:cacheprovider", "-p", "pytest_prodready.plugin")
    result.assert_outcomes(failed=1, skipped=2)  # cannot judge: a failed test, said so
    assert "pip install 'pytest-prodready[locust]'" in result.stdout.str()
