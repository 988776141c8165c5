"""metrics.prometheus_valid: fails on a real target with the defect, passes on one without it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from pytest_prodready.checking import run_check
from pytest_prodready.target import Target
from tests.targets.pool import served_pool, without_secrets
from tests.targets.webapp import METRICS_TOKEN, Served

CHECK = "metrics.prometheus_valid"


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[..., Served]]:
    """The webapp by defect set, one server per set for the whole module."""
    with served_pool() as get:
        yield get


def test_passes_on_prometheus_text_with_request_metrics(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """Token-protected metrics with http_requests_total pass; the token is sent, and masked."""
    served = app()
    result = run_check(CHECK, target_for(served))
    assert result.outcome == "passed", result.detail
    assert result.message == "2 metric families, request metrics: http_requests"
    assert any(s.path == "/metrics" and s.headers.get("Authorization") == f"Bearer {METRICS_TOKEN}"
               for s in served.log)
    assert dict(result.exchanges[0].request_headers)["Authorization"] == "Bearer ****"


def test_fails_when_not_prometheus_text(app: Callable[..., Served],
                                        target_for: Callable[..., Target]) -> None:
    """An HTML page at the metrics path fails as not Prometheus text, quoting the parser."""
    result = run_check(CHECK, target_for(app("bad_metrics")))
    assert result.outcome == "failed"
    assert result.message.startswith("/metrics is not valid Prometheus text: ")
    assert "<html>metrics are here somewhere</html>" in result.detail
    assert METRICS_TOKEN not in result.detail


def test_fails_without_request_metrics(app: Callable[..., Served],
                                       target_for: Callable[..., Target]) -> None:
    """Valid Prometheus text with only process metrics fails, listing what it saw."""
    result = run_check(CHECK, target_for(app("no_request_metrics")))
    assert result.outcome == "failed"
    assert result.message == ("/metrics has 1 metric families but no request metrics "
                              "(e.g. http_requests_total); saw: process_cpu_seconds")


def test_protected_without_token_configured_is_skipped(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """Metrics answering 401 with no metrics.token_env configured: skipped, naming the key."""
    base = target_for(app(), metrics={"path": "/metrics"})
    with without_secrets(base, "metrics.token_env") as target:
        result = run_check(CHECK, target)
    assert result.outcome == "skipped"
    assert result.message == ("/metrics is protected (401); set metrics.token_env "
                              "to check its content")
    assert "Authorization" not in dict(result.exchanges[0].request_headers)


def test_public_metrics_without_token_are_judged(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """Public metrics need no token: judged on content (pass, and fail when bad)."""
    public = target_for(app("metrics_public"), metrics={"path": "/metrics"})
    with without_secrets(public, "metrics.token_env") as target:
        assert run_check(CHECK, target).outcome == "passed"
    bad = target_for(app("metrics_public", "no_request_metrics"), metrics={"path": "/metrics"})
    with without_secrets(bad, "metrics.token_env") as target:
        assert run_check(CHECK, target).outcome == "failed"


def test_wrong_token_fails_not_skips(app: Callable[..., Served],
                                     target_for: Callable[..., Target]) -> None:
    """A configured token that the endpoint refuses is a failure, with the token masked."""
    base = target_for(app())
    wrong = "tok-metrics-wrong-0000"
    settings = replace(base.settings, secrets={**base.settings.secrets, "metrics.token_env": wrong})
    with Target(settings) as target:
        result = run_check(CHECK, target)
    assert result.outcome == "failed"
    assert result.message == "/metrics answered 401, expected 200"
    assert wrong not in result.detail


def test_wrong_path_fails(app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A metrics path that does not exist fails with its status."""
    result = run_check(CHECK, target_for(app(), metrics={"path": "/prometheus",
                                                         "token_env": "X"}))
    assert result.outcome == "failed"
    assert result.message == "/prometheus answered 404, expected 200"


def test_not_configured_is_skipped(app: Callable[..., Served],
                                   target_for: Callable[..., Target]) -> None:
    """With no metrics.path the check skips, naming the key, and sends nothing."""
    result = run_check(CHECK, target_for(app(), metrics={}))
    assert result.outcome == "skipped"
    assert result.message == "not configured: set metrics.path"
    assert not result.exchanges
