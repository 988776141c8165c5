"""health.*: each check fails on a real target with the defect and passes on one without it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, Response

from pytest_prodready.checking import run_check
from pytest_prodready.checks.health import DEFAULT_VERSION_PATHS
from pytest_prodready.target import Target
from tests.targets.pool import served_pool
from tests.targets.webapp import Served, serve_app

HEALTH = "/api/health"
# A built SPA's index: short, and its asset hash looks like a commit id.
SPA_INDEX = ('<!doctype html><html><head><script type="module" src="/assets/index-4f3a2b1c.js">'
             "</script></head><body><div id=root></div></body></html>")


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[..., Served]]:
    """The webapp by defect set, one server per set for the whole module."""
    with served_pool() as get:
        yield get


@pytest.fixture(scope="module")
def plain() -> Iterator[str]:
    """A real service with plain-text health and version endpoints behind a Vite-style SPA."""
    flask_app = Flask("plain_text_service")

    @flask_app.route("/healthz")
    def healthz() -> Response:
        return Response("OK\n", mimetype="text/plain")

    @flask_app.route("/healthz/db")
    def healthz_db() -> Response:
        return Response("DOWN: database unreachable\n", mimetype="text/plain")

    @flask_app.route("/build")
    def build() -> Response:
        return Response("2.7.0\n", mimetype="text/plain")

    @flask_app.route("/", defaults={"_path": ""})
    @flask_app.route("/<path:_path>")
    def spa(_path: str) -> Response:
        return Response(SPA_INDEX, mimetype="text/html")

    with serve_app(flask_app) as url:
        yield url


# -- health.endpoint_ok -------------------------------------------------------------------
def test_endpoint_ok_passes_when_healthy(app: Callable[..., Served],
                                         target_for: Callable[..., Target]) -> None:
    """200 with every component up, well within budget: passes, saying how fast."""
    result = run_check("health.endpoint_ok", target_for(app()), HEALTH)
    assert result.outcome == "passed", result.detail
    assert re.fullmatch(r"/api/health healthy in \d+ ms", result.message)


def test_endpoint_ok_fails_on_unhealthy_component(app: Callable[..., Served],
                                                  target_for: Callable[..., Target]) -> None:
    """200 but a component reports down (while the top level says ok): fails, naming it."""
    result = run_check("health.endpoint_ok", target_for(app("unhealthy")), HEALTH)
    assert result.outcome == "failed"
    assert result.message == "/api/health reports unhealthy: checks.db=down"
    assert '"db": {"status": "down"}' in result.detail


def test_endpoint_ok_fails_on_503(app: Callable[..., Served],
                                  target_for: Callable[..., Target]) -> None:
    """A 503 (after the client's bounded retries) fails with the status."""
    result = run_check("health.endpoint_ok", target_for(app("health_500")), HEALTH)
    assert result.outcome == "failed"
    assert result.message == "/api/health answered 503, expected 200"
    assert "< 503 SERVICE UNAVAILABLE" in result.detail


def test_endpoint_ok_fails_when_slower_than_budget(app: Callable[..., Served],
                                                   target_for: Callable[..., Target]) -> None:
    """A 400 ms health answer fails a 200 ms health_budget_ms, and passes the default 2 s."""
    served = app("slow_health")
    result = run_check("health.endpoint_ok", target_for(served, health_budget_ms=200), HEALTH)
    assert result.outcome == "failed"
    assert re.fullmatch(r"/api/health took \d+ ms, over health_budget_ms=200", result.message)
    assert result.exchanges[0].elapsed_ms >= 400
    assert run_check("health.endpoint_ok", target_for(served), HEALTH).outcome == "passed"


def test_endpoint_ok_fails_on_wrong_path(app: Callable[..., Served],
                                         target_for: Callable[..., Target]) -> None:
    """A health path that does not exist fails with its 404."""
    result = run_check("health.endpoint_ok", target_for(app()), "/api/healthz")
    assert result.outcome == "failed"
    assert result.message == "/api/healthz answered 404, expected 200"


def test_endpoint_ok_plain_text_bodies(plain: str, target_for: Callable[..., Target]) -> None:
    """A plain 'OK' passes; a plain-text 'DOWN: ...' with status 200 fails, quoting the body."""
    ok = run_check("health.endpoint_ok", target_for(plain), "/healthz")
    assert ok.outcome == "passed", ok.detail
    down = run_check("health.endpoint_ok", target_for(plain), "/healthz/db")
    assert down.outcome == "failed"
    assert down.message == "/healthz/db body says 'DOWN: database unreachable'"


def test_endpoint_ok_not_configured_is_skipped(app: Callable[..., Served],
                                               target_for: Callable[..., Target]) -> None:
    """With no health endpoints configured the check skips, naming the key."""
    result = run_check("health.endpoint_ok", target_for(app(), health=[]), HEALTH)
    assert result.outcome == "skipped"
    assert result.message == "not configured: set health"


# -- health.version_exposed ---------------------------------------------------------------
def test_version_exposed_passes_with_version_endpoint(app: Callable[..., Served],
                                                      target_for: Callable[..., Target]) -> None:
    """GET /version with {"version": ...} passes, quoting what it found."""
    result = run_check("health.version_exposed", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == "GET /version publishes version=1.4.2"


@pytest.mark.parametrize("defects", [("no_version",), ("no_version", "spa")])
def test_version_exposed_fails_without_version(
        app: Callable[..., Served], target_for: Callable[..., Target],
        defects: tuple[str, ...]) -> None:
    """No version anywhere fails, listing where it looked; an SPA's 200 index is no version."""
    result = run_check("health.version_exposed", target_for(app(*defects)))
    assert result.outcome == "failed"
    looked = ", ".join([*DEFAULT_VERSION_PATHS, HEALTH])
    assert result.message == (f"no version or commit found at {looked} "
                              "(set version_paths if it lives elsewhere)")
    assert len(result.exchanges) == len(DEFAULT_VERSION_PATHS) + 1


def test_version_exposed_spa_asset_hash_is_not_a_commit(
        plain: str, target_for: Callable[..., Target]) -> None:
    """An SPA index whose asset hash looks like a commit id does not count as a version."""
    result = run_check("health.version_exposed", target_for(plain))
    assert result.outcome == "failed"
    assert all(ex.status == 200 for ex in result.exchanges)  # the soft 404 really happened


def test_version_exposed_honours_version_paths(
        app: Callable[..., Served], plain: str, target_for: Callable[..., Target]) -> None:
    """version_paths replaces the defaults: a plain-text version there passes, a path without fails."""
    text = run_check("health.version_exposed", target_for(plain, version_paths=["/build"]))
    assert text.outcome == "passed", text.detail
    assert text.message == "GET /build publishes 2.7.0"

    missing = run_check("health.version_exposed", target_for(app(), version_paths=[HEALTH]))
    assert missing.outcome == "failed"
    assert missing.message.startswith("no version or commit found at /api/health (")


@pytest.mark.parametrize("failure", ["503", "broken body"])
def test_version_exposed_cannot_judge_where_the_answer_was_unusable(
        failure: str, target_for: Callable[..., Target]) -> None:
    """A server error, or a body that broke off, at a version path is no "not found": the
    version may live exactly there (found on a flaky network: tests/test_flaky.py)."""
    flask_app = Flask(__name__)

    @flask_app.get("/version")
    def version() -> Response:
        if failure == "503":
            return Response("busy", status=503, headers={"Retry-After": "0"})

        def broken() -> Iterator[str]:
            yield '{"vers'
            raise ConnectionError("the backend went away mid-response")
        return Response(broken(), mimetype="application/json")

    with serve_app(flask_app) as url:
        result = run_check("health.version_exposed", target_for(url, retries=0))
    assert result.outcome == "error", result.message
    assert result.message.startswith("cannot judge: no version found, but GET /version got no usable answer")


# -- real health documents (found trying the checks on what services really publish) -------
IETF_FAILING = {"status": "pass", "version": "1", "releaseId": "1.4.2",
                "checks": {"postgres:responseTime": [{"componentType": "datastore", "status": "pass"}],
                           "redis:connections": [{"componentId": "a", "status": "pass"},
                                                 {"componentId": "b", "status": "fail"}]}}


@pytest.fixture(scope="module")
def documents() -> Iterator[str]:
    """A service publishing the health and version documents of real formats."""
    flask_app = Flask("documents")
    bodies: dict[str, tuple[int, Any]] = {
        "/health/ietf-fail": (200, IETF_FAILING),
        "/health/ietf-ok": (200, {**IETF_FAILING, "checks": {"redis:connections": [
            {"componentId": "a", "status": "pass"}, {"componentId": "b", "status": "warn"}]}}),
        "/health/flag": (200, {"healthy": False}),
        "/health/grpc": (200, {"status": "NOT_SERVING"}),
        "/v/flag": (200, {"build": True}),
        "/v/real": (200, {"version": "1.4.2"}),
    }

    @flask_app.get("/<path:path>")
    def serve(path: str) -> Response:
        if f"/{path}" == "/v/limited":
            return Response("slow down", 429, {"Retry-After": "0"})
        status, body = bodies.get(f"/{path}", (404, {"error": "not found"}))
        return Response(json.dumps(body), status, mimetype="application/json")

    with serve_app(flask_app) as url:
        yield url


def test_a_failing_check_in_an_ietf_health_document_fails(
        documents: str, target_for: Callable[..., Target]) -> None:
    """draft-inadarei-api-health-check: a top-level "pass" with one failing check inside
    the lists of `checks` is unhealthy; "warn" is healthy with a concern."""
    target = target_for(documents, health=["/health/ietf-fail", "/health/ietf-ok"])
    failed = run_check("health.endpoint_ok", target, "/health/ietf-fail")
    assert failed.outcome == "failed"
    assert failed.message == "/health/ietf-fail reports unhealthy: checks.redis:connections[1]=fail"
    assert run_check("health.endpoint_ok", target, "/health/ietf-ok").outcome == "passed"


def test_an_unhealthy_flag_is_named_by_its_key(documents: str, target_for: Callable[..., Target]) -> None:
    result = run_check("health.endpoint_ok", target_for(documents, health=["/health/flag"]), "/health/flag")
    assert result.outcome == "failed" and result.message.endswith("reports unhealthy: healthy=False")


def test_a_boolean_is_no_version(documents: str, target_for: Callable[..., Target]) -> None:
    result = run_check("health.version_exposed", target_for(documents, version_paths=["/v/flag"]))
    assert result.outcome == "failed", result.message


def test_a_version_found_is_a_pass_though_another_path_went_unanswered(
        documents: str, target_for: Callable[..., Target]) -> None:
    target = target_for(documents, retries=0, version_paths=["/v/limited", "/v/real"])
    result = run_check("health.version_exposed", target)
    assert result.outcome == "passed", result.message
    assert result.message == "GET /v/real publishes version=1.4.2"
    # and with nothing found, the unanswered path is no "not found"
    nothing = run_check("health.version_exposed", target_for(documents, retries=0,
                                                             version_paths=["/v/limited", "/v/flag"]))
    assert nothing.outcome == "error", nothing.message


def test_grpc_not_serving_is_unhealthy(documents: str, target_for: Callable[..., Target]) -> None:
    """grpc.health.v1's NOT_SERVING, as grpc-gateway renders HealthCheckResponse in JSON."""
    result = run_check("health.endpoint_ok", target_for(documents, health=["/health/grpc"]), "/health/grpc")
    assert result.outcome == "failed" and result.message.endswith("reports unhealthy: status=NOT_SERVING")
