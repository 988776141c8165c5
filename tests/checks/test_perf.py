"""perf.*: the latency budget against a target with a known delay (40 ms +- 5 ms, in its own
process), compression and static caching against nginx serving real files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.perf import FAMILY, LATENCY_ENTRY, Distribution, fingerprinted, percentile
from pytest_prodready.config import Settings
from pytest_prodready.exceptions import ConfigError
from pytest_prodready.target import Target
from tests.targets.limiters import Delayed, NginxStatic, delayed, flask_limited, nginx_static, wrk_p95_ms


@pytest.fixture(scope="module")
def slow() -> Iterator[Delayed]:
    with delayed(40, 5) as served:
        yield served


def latency(target: Target, subject: str = "GET /slow") -> Result:
    return run_check("perf.latency_budget", target, subject)


def distribution(result: Result) -> Distribution:
    dist = result.facts[0]
    assert isinstance(dist, Distribution)
    return dist


def within(measured: float, truth: float, tolerance: float) -> bool:
    """Measured latency = the delay the server was told to add + loopback overhead."""
    return truth <= measured <= truth * (1 + tolerance)


@pytest.fixture(scope="module")
def slower() -> Iterator[Delayed]:
    """100 ms +- 10 ms for the accuracy comparisons: 5% of it (5 ms) is above what the client's
    own overhead becomes on a loaded 2-core CI machine (1-4 ms); 5% of 40 ms (2 ms) is not."""
    with delayed(100, 10) as served:
        yield served


def test_percentiles_follow_the_truth_and_wrk(slower: Delayed, target_for: Callable[..., Target],
                                               tmp_path: Path) -> None:
    """The reported percentiles are the truth's, never below it, and near wrk's on the same
    endpoint. Bounds here are the design's with generous slack (a shared 2-core machine adds
    tens of ms to a dozen samples at will); the exact accuracy (p95 within 3 % of the truth
    and 2 % of wrk) is measured in benchmarks/bench_latency.py and docs/performance.md."""
    # 4 in flight on 2 cores; 120 samples: the p95 is the 114th, so six hiccups are needed to move it.
    requests = 120
    truth = slower.truth(requests)
    entry = {"/slow": {"requests": requests, "concurrency": 4}}
    result = latency(target_for(slower.url, latency=entry))
    assert result.outcome == "passed", result.message
    dist = distribution(result)
    assert dist.p(50) >= percentile(truth, 50) and dist.p(95) >= percentile(truth, 95)
    assert all(within(dist.p(q), percentile(truth, q), 0.5) for q in (50, 95)), (
        dist.p(50), dist.p(95), percentile(truth, 50), percentile(truth, 95))
    # p99 of 120 samples is the second-slowest: one hiccup moves it; only its direction is sure.
    assert dist.p(99) >= percentile(truth, 99)
    assert len(dist.samples_ms) == requests and dist.warmup == 5
    assert "p95" in result.message and "budget 500 ms" in result.message  # the default budget
    evidence = dist.to_dict()
    assert evidence["percentile_method"] == "nearest-rank on raw samples"
    assert len(evidence["samples_ms"]) == requests
    assert sum(b["count"] for b in evidence["histogram"]) == requests
    assert "#" in dist.render()

    # wrk on the same endpoint at the same concurrency (its requests carry no sequence
    # number: the server draws each delay afresh from the same distribution).
    theirs, count = wrk_p95_ms(f"{slower.url}/slow", connections=4, seconds=3, workdir=tmp_path)
    assert count > 100
    ours = distribution(latency(target_for(slower.url, latency=entry))).p(95)
    assert abs(ours - theirs) <= 0.5 * theirs, (ours, theirs)


@pytest.mark.parametrize(("entry", "outcome", "fragment"), [
    ({"p95_ms": 40}, "failed", "over budget: p95"),
    # Budgets far above the truth (44.5 ms): a loaded CI machine adds tens of ms to a sample.
    ({"p95_ms": 150, "p99_ms": 300}, "passed", "p95"),
    ({"p99_ms": 30}, "failed", "p99"),
    ({"thresholds": ["p(95)<40"]}, "failed", "p(95)<40 (measured"),
    ({"thresholds": ["p(95)<150", "avg<=120", "rate<0.01"]}, "passed", "p(95)<150 (measured"),
    ({"p50_ms": 20}, "failed", "p50"),
])
def test_budget_below_the_truth_fails_above_passes(slow: Delayed, target_for: Callable[..., Target],
                                                   entry: dict[str, object], outcome: str,
                                                   fragment: str) -> None:
    result = latency(target_for(slow.url, latency={"/slow": {"requests": 40, "concurrency": 4, **entry}}))
    assert result.outcome == outcome, result.message
    assert fragment in result.message
    assert result.exchanges  # the slowest exchange is shown


def test_error_rate(slow: Delayed, target_for: Callable[..., Target]) -> None:
    """/flaky answers 500 to every 10th request: 10% errors."""
    over = latency(target_for(slow.url, latency={"/flaky": {"requests": 50, "warmup": 0}}), "GET /flaky")
    assert over.outcome == "failed", over.message
    assert "error rate 10.0% (at most 1.0%)" in over.message and "errors: 500" in over.message
    assert any(ex.status == 500 for ex in over.exchanges)
    within = latency(target_for(slow.url, latency={"/flaky": {"requests": 50, "warmup": 0,
                                                              "max_error_rate": 0.2}}), "GET /flaky")
    assert within.outcome == "passed", within.message


def test_the_run_budget_is_respected(slow: Delayed, target_for: Callable[..., Target]) -> None:
    result = latency(target_for(slow.url, request_budget=20, latency={"/slow": {"requests": 50}}))
    assert result.outcome == "error" and "takes 55 requests" in result.message


def test_config_k6_thresholds_and_concurrency_are_validated() -> None:
    assert LATENCY_ENTRY({"thresholds": ["p(99.9)<800", "max<1000"]}, "latency.x")
    with pytest.raises(ConfigError, match="k6-style threshold"):
        LATENCY_ENTRY({"thresholds": ["p95 < 200"]}, "latency.x")
    settings = Settings(values={"max_concurrency": 4, "latency": {"/x": {"concurrency": 8}}},
                        secrets={}, sources={})
    with pytest.raises(ConfigError, match="above max_concurrency"):
        FAMILY.validate(settings)


def test_without_the_active_flag_no_latency_request_is_sent(pytester: pytest.Pytester) -> None:
    with flask_limited("off") as app:
        config = f'base_url = "{app.url}"\n\n[latency]\n"/" = {{ requests = 20 }}\n'
        pytester.makefile(".toml", prodready=config)
        result = pytester.runpytest("--prodready", "--prodready-only", "perf", "-rs",
                                    "-p", "no:cacheprovider")
        result.assert_outcomes(skipped=3)  # latency: active; compression: no large page; static: unset
        assert "needs --prodready-active" in result.stdout.str()
        before = app.count("/")
        active = pytester.runpytest("--prodready", "--prodready-active", "--prodready-only", "perf",
                                    "-p", "no:cacheprovider")
        active.assert_outcomes(passed=1, skipped=2)
        assert app.count("/") - before == 20 + 5 + 1  # the samples, the warm-up, the preflight


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert (percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0


# -- compression and static caching against nginx ----------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxStatic]:
    with nginx_static(tmp_path_factory.mktemp("nginx-static")) as running:
        yield running


ASSETS = ["/assets/app.3f9c1a7e.js", "/assets/site.css", "/assets/logo.svg"]


@pytest.mark.parametrize(("role", "outcome", "fragment"), [
    ("good", "passed", "text responses over 1 KiB were compressed"),
    ("bare", "failed", "sent uncompressed although the request accepted gzip: GET /"),
])
def test_compression_on_nginx(site: NginxStatic, target_for: Callable[..., Target], role: str,
                              outcome: str, fragment: str) -> None:
    result = run_check("perf.compression", target_for(site.url(role), perf={"compress": ASSETS}))
    assert result.outcome == outcome, result.message
    assert fragment in result.message


def test_compression_with_nothing_large_skips(site: NginxStatic, target_for: Callable[..., Target]) -> None:
    result = run_check("perf.compression", target_for(site.url("good"), page="/assets/logo.svg"))
    assert result.outcome == "skipped", result.message


@pytest.mark.parametrize(("role", "outcome", "fragments"), [
    ("good", "passed", ["3 static assets carry long-lived caching",
                        "/assets/app.3f9c1a7e.js (public, max-age=31536000, immutable)"]),
    ("bare", "failed", ["3 of 3 static assets", "/assets/site.css: no Cache-Control"]),
    ("short", "failed", ["/assets/site.css: max-age=3600 is shorter than a day",
                         "/assets/app.3f9c1a7e.js: Cache-Control 'max-age=3600, no-cache' forbids "
                         "shared caching (no-cache)",
                         "a fingerprinted name without 'immutable'"]),
])
def test_static_caching_on_nginx(site: NginxStatic, target_for: Callable[..., Target], role: str,
                                 outcome: str, fragments: list[str]) -> None:
    result = run_check("perf.static_caching", target_for(site.url(role), perf={"static": ASSETS}))
    assert result.outcome == outcome, result.message
    for fragment in fragments:
        assert fragment in result.message


def test_fingerprinted_names() -> None:
    assert fingerprinted("/assets/app.3f9c1a7e.js")
    assert fingerprinted("/static/main-B8fK2aQ1.css")
    assert fingerprinted("/_next/static/chunks/pages/index-5f2b9c1d8e4a7b3c.js")
    assert not fingerprinted("/assets/site.css")
    assert not fingerprinted("/assets/jquery-3.7.1.min.js")
    assert not fingerprinted("/assets/bootstrap.bundle.js")


def test_assertion_helpers(slow: Delayed, site: NginxStatic, target_for: Callable[..., Target]) -> None:
    from pytest_prodready import assertions

    assertions.assert_latency_budget(target_for(slow.url), "/slow", p95_ms=150, requests=20)
    with pytest.raises(AssertionError, match="over budget"):
        assertions.assert_latency_budget(target_for(slow.url), "/slow", requests=20,
                                         thresholds=["p(95)<30"])
    assertions.assert_compressed(target_for(site.url("good")), *ASSETS)
    with pytest.raises(AssertionError, match="uncompressed"):
        assertions.assert_compressed(target_for(site.url("bare")), *ASSETS)
    assertions.assert_static_cached(target_for(site.url("good")), *ASSETS)
    with pytest.raises(AssertionError, match="no Cache-Control"):
        assertions.assert_static_cached(target_for(site.url("bare")), *ASSETS)
