"""exposure.*: each check fails on a real target with the defect and passes on one without it.

Soft-404 awareness is part of the contract: an SPA answering 200 with its index page to
every path is not flagged, and a real file behind the same SPA is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask, Response

from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.exposure import ADMIN, SENSITIVE
from pytest_prodready.target import Target
from tests.targets.pool import served_pool
from tests.targets.webapp import INDEX, Served, serve_app

LEAKED_DSN = "postgresql://app:hunter2hunter2@db.internal:5432/app"  # what "secret_leak" serves
PASSWORD = "hunter2hunter2"
SECRET_KEY = "django-insecure-8f3k2m9q7x1v"
PRIVATE_KEY_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw"


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[..., Served]]:
    """The webapp by defect set, one server per set for the whole module."""
    with served_pool() as get:
        yield get


@pytest.fixture(scope="module")
def leaky_files() -> Iterator[str]:
    """A real service serving a .env with a secret key, an SSH key, and a key in JSON."""
    flask_app = Flask("leaky_files")

    @flask_app.route("/.env")
    def env() -> Response:
        return Response(f"DEBUG=false\nexport SECRET_KEY='{SECRET_KEY}'\n", mimetype="text/plain")

    @flask_app.route("/id_rsa")
    def id_rsa() -> Response:
        return Response(f"-----BEGIN RSA PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n"
                        "-----END RSA PRIVATE KEY-----\n", mimetype="text/plain")

    @flask_app.route("/api/debug")
    def debug() -> Response:
        key = f"-----BEGIN PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n-----END PRIVATE KEY-----\n"
        return Response(json.dumps({"signing_key": key}), mimetype="application/json")

    with serve_app(flask_app) as url:
        yield url


def probed_paths(result: Result) -> set[str]:
    return {urlsplit(ex.url).path for ex in result.exchanges}


# -- exposure.sensitive_paths -------------------------------------------------------------
def test_sensitive_paths_pass_when_nothing_is_served(app: Callable[..., Served],
                                                     target_for: Callable[..., Target]) -> None:
    """The clean target passes, after probing every built-in path."""
    result = run_check("exposure.sensitive_paths", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"none of {len(SENSITIVE)} sensitive path(s) served"
    assert {s.path for s in SENSITIVE} <= probed_paths(result)


@pytest.mark.parametrize(("defect", "path", "what"), [
    ("env_served", "/.env", "environment file"),
    ("git_served", "/.git/config", "git repository config"),
])
def test_sensitive_paths_fail_when_a_file_is_served(
        app: Callable[..., Served], target_for: Callable[..., Target],
        defect: str, path: str, what: str) -> None:
    """A served .env or .git/config fails, naming exactly that file, with its response."""
    result = run_check("exposure.sensitive_paths", target_for(app(defect)))
    assert result.outcome == "failed"
    assert result.message == f"served to anyone: {path} ({what})"
    assert [urlsplit(ex.url).path for ex in result.exchanges] == [path]
    assert f"GET http://127.0.0.1:{urlsplit(app(defect).url).port}{path}" in result.detail
    assert "< 200 OK" in result.detail


def test_sensitive_paths_mask_the_credentials_of_a_served_env(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """The served .env is shown as evidence, but the password inside it is masked."""
    result = run_check("exposure.sensitive_paths", target_for(app("env_served")), "/.env")
    assert result.outcome == "failed"
    assert "< DATABASE_URL=" in result.detail and "****" in result.detail
    assert "DEBUG=false" in result.detail
    assert PASSWORD not in result.detail
    assert PASSWORD not in json.dumps(result.evidence())


def test_sensitive_paths_mask_secret_keys_and_private_keys(
        leaky_files: str, target_for: Callable[..., Target]) -> None:
    """A SECRET_KEY assignment and a private key's body are masked; harmless lines are not."""
    result = run_check("exposure.sensitive_paths", target_for(leaky_files))
    assert result.outcome == "failed"
    assert result.message == ("served to anyone: /.env (environment file); "
                              "/id_rsa (SSH private key)")
    assert SECRET_KEY not in result.detail and PRIVATE_KEY_BODY not in result.detail
    assert "-----BEGIN RSA PRIVATE KEY-----" in result.detail
    assert "DEBUG=false" in result.detail and "SECRET_KEY='****'" in result.detail


@pytest.mark.parametrize("subject", ["/.env", ""])
def test_sensitive_paths_soft_404_spa_is_not_flagged(
        app: Callable[..., Served], target_for: Callable[..., Target], subject: str) -> None:
    """An SPA answering 200 with its index to /.env (and every path) is not a served .env."""
    result = run_check("exposure.sensitive_paths", target_for(app("spa")), subject)
    assert result.outcome == "passed", result.detail
    env = next(ex for ex in result.exchanges if urlsplit(ex.url).path == "/.env")
    assert env.status == 200 and env.body == INDEX  # the soft 404 really happened


@pytest.mark.parametrize("subject", ["/.env", ""])
def test_sensitive_paths_real_env_behind_spa_is_flagged(
        app: Callable[..., Served], target_for: Callable[..., Target], subject: str) -> None:
    """Behind the same SPA a real .env is flagged, and only it (not the index everywhere)."""
    result = run_check("exposure.sensitive_paths", target_for(app("spa", "env_served")), subject)
    assert result.outcome == "failed"
    assert result.message == "served to anyone: /.env (environment file)"
    assert [urlsplit(ex.url).path for ex in result.exchanges] == ["/.env"]


def test_sensitive_paths_json_soft_404_is_not_flagged(app: Callable[..., Served],
                                                      target_for: Callable[..., Target]) -> None:
    """A 200 JSON error for unknown paths is not mistaken for the files."""
    result = run_check("exposure.sensitive_paths", target_for(app("soft_404")))
    assert result.outcome == "passed", result.detail


def test_sensitive_paths_extra_path_compared_with_baseline(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A configured extra path fails when it answers unlike an unknown path, not when it's the SPA."""
    exposure = {"extra_paths": ["/version"]}
    result = run_check("exposure.sensitive_paths", target_for(app(), exposure=exposure))
    assert result.outcome == "failed"
    assert result.message == "served to anyone: /version (answers 200, unlike an unknown path)"

    spa = run_check("exposure.sensitive_paths",
                    target_for(app("spa"), exposure={"extra_paths": ["/backup/"]}))
    assert spa.outcome == "passed", spa.detail
    assert spa.message == f"none of {len(SENSITIVE) + 1} sensitive path(s) served"


# -- exposure.admin_surfaces --------------------------------------------------------------
def test_admin_surfaces_pass_when_nothing_is_public(app: Callable[..., Served],
                                                    target_for: Callable[..., Target]) -> None:
    """Token-protected /metrics (401) and absent UIs pass."""
    result = run_check("exposure.admin_surfaces", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"none of {len(ADMIN)} admin surface(s) public"
    metrics = next(ex for ex in result.exchanges if urlsplit(ex.url).path == "/metrics")
    assert metrics.status == 401


def test_admin_surfaces_fail_when_metrics_and_docs_are_public(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """Public metrics and Swagger UI fail, both named, with the allow-list hint."""
    result = run_check("exposure.admin_surfaces", target_for(app("metrics_public", "swagger_public")))
    assert result.outcome == "failed"
    assert result.message == ("public without authentication: /metrics (Prometheus metrics); "
                              "/docs (API docs UI) (allow intended ones with exposure.allow)")
    assert "# HELP http_requests_total" in result.detail
    assert "swagger-ui" in result.detail


def test_admin_surfaces_honour_exposure_allow(app: Callable[..., Served],
                                              target_for: Callable[..., Target]) -> None:
    """Allowed surfaces are neither probed nor flagged; the others still are."""
    served = app("metrics_public", "swagger_public")
    one = run_check("exposure.admin_surfaces", target_for(served, exposure={"allow": ["/metrics"]}))
    assert one.outcome == "failed"
    assert "/docs (API docs UI)" in one.message and "/metrics" not in one.message
    assert "/metrics" not in probed_paths(one)

    both = run_check("exposure.admin_surfaces",
                     target_for(served, exposure={"allow": ["/metrics", "/docs"]}))
    assert both.outcome == "passed", both.detail
    assert both.message == f"none of {len(ADMIN) - 2} admin surface(s) public"


def test_admin_surfaces_soft_404_spa_is_not_flagged(app: Callable[..., Served],
                                                    target_for: Callable[..., Target]) -> None:
    """An SPA answering 200 to /docs, /actuator, /graph... with its index is not flagged."""
    result = run_check("exposure.admin_surfaces", target_for(app("spa")))
    assert result.outcome == "passed", result.detail
    assert any(ex.status == 200 and ex.body == INDEX for ex in result.exchanges)


# -- exposure.secrets_in_responses --------------------------------------------------------
def test_secrets_in_responses_pass_on_clean_responses(app: Callable[..., Served],
                                                      target_for: Callable[..., Target]) -> None:
    """The clean target's page, 404, health and protected answers hold no credentials."""
    result = run_check("exposure.secrets_in_responses", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"no credential patterns in {len(result.exchanges)} response(s)"
    assert "/api/health" in probed_paths(result)


def test_secrets_in_responses_fail_and_mask_the_leaked_value(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A DSN with its password in /api/health fails; only its first characters are shown."""
    result = run_check("exposure.secrets_in_responses", target_for(app("secret_leak")))
    assert result.outcome == "failed"
    assert result.message == ("credentials in responses: PostgreSQL database URL with password "
                              "in GET /api/health")
    assert [urlsplit(ex.url).path for ex in result.exchanges] == ["/api/health"]
    assert '"database": "' in result.detail and "****" in result.detail
    for output in (result.message, result.detail, json.dumps(result.evidence())):
        assert LEAKED_DSN not in output
        assert PASSWORD not in output


def test_secrets_in_responses_one_path_as_subject(app: Callable[..., Served],
                                                  target_for: Callable[..., Target]) -> None:
    """Given one path, only it is probed: the leak there fails, the clean page passes."""
    leaky = run_check("exposure.secrets_in_responses", target_for(app("secret_leak")), "/api/health")
    assert leaky.outcome == "failed"
    assert probed_paths(leaky) == {"/api/health"}
    clean = run_check("exposure.secrets_in_responses", target_for(app("secret_leak")), "/")
    assert clean.outcome == "passed", clean.detail


def test_secrets_in_responses_private_key_material_is_masked(
        leaky_files: str, target_for: Callable[..., Target]) -> None:
    """A private key in a JSON response fails; the key's body never reaches the output."""
    result = run_check("exposure.secrets_in_responses", target_for(leaky_files), "/api/debug")
    assert result.outcome == "failed"
    assert result.message == "credentials in responses: PKCS#8 private key in GET /api/debug"
    assert "-----BEGIN PRIVATE KEY-----" in result.detail
    for output in (result.detail, json.dumps(result.evidence())):
        assert PRIVATE_KEY_BODY not in output


@pytest.fixture(scope="module")
def metrics_elsewhere() -> Iterator[str]:
    """Public Prometheus metrics at /internal/metrics (not at /metrics)."""
    flask_app = Flask("metrics_elsewhere")

    @flask_app.route("/internal/metrics")
    def metrics() -> Response:
        return Response("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"
                        "http_requests_total 3\n", mimetype="text/plain")

    with serve_app(flask_app) as url:
        yield url


def test_admin_surfaces_look_at_the_configured_metrics_path(
        metrics_elsewhere: str, target_for: Callable[..., Target]) -> None:
    """The team said where its metrics live: public there is the same finding as at /metrics,
    and exposure.allow still makes it intended."""
    configured = {"metrics": {"path": "/internal/metrics"}}
    result = run_check("exposure.admin_surfaces", target_for(metrics_elsewhere, **configured))
    assert result.outcome == "failed", result.message
    assert "/internal/metrics (Prometheus metrics)" in result.message
    allowed = target_for(metrics_elsewhere, **configured, exposure={"allow": ["/internal/metrics"]})
    assert run_check("exposure.admin_surfaces", allowed).outcome == "passed"
