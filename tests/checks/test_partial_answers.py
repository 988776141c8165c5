"""A defect one probe shows is reported even when another probe of the same check got no
usable answer (a 429, a timeout); and without the defect, the missing answer forbids a
pass. Real Flask services that rate limit one path or one method, for the checks that fail
on any one of their probes: exposure.sensitive_paths and admin_surfaces, the cors checks,
auth.invalid_token_rejected."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response, request

from pytest_prodready.checking import run_check
from pytest_prodready.checks.auth import GARBAGE_TOKEN
from pytest_prodready.checks.cors import UNKNOWN_ORIGIN
from pytest_prodready.target import Target
from tests.targets.webapp import serve_app


def limited() -> Response:
    return Response("slow down", 429, {"Retry-After": "0"})


def service(*, env_served: bool, reflect: bool, any_jwt: bool) -> Flask:
    """/backup.sql, the preflight and the garbage token always get a 429; the rest answers
    with or without the defect."""
    app = Flask("partly_limited")

    @app.route("/.env")
    def env() -> Response:
        if env_served:
            return Response("DEBUG=false\nDATABASE_URL=postgres://app@db/app\n", mimetype="text/plain")
        return Response("not found", 404)

    @app.route("/backup.sql")
    def backup() -> Response:
        return limited()

    @app.route("/", methods=["GET", "OPTIONS"])
    def index() -> Response:
        if request.method == "OPTIONS":
            return limited()
        origin = request.headers.get("Origin")
        headers = {"Access-Control-Allow-Origin": origin} if reflect and origin else {}
        return Response("<html><body>home</body></html>", headers=headers, mimetype="text/html")

    @app.route("/api/agents")
    def agents() -> Response:
        token = request.headers.get("Authorization", "")
        if token == f"Bearer {GARBAGE_TOKEN}":
            return limited()
        if any_jwt and token.count(".") == 2:
            return Response('[{"id": 1}]', mimetype="application/json")
        return Response('{"error": "unauthorized"}', 401, mimetype="application/json")

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Response:
        return Response("not found", 404)

    return app


@pytest.fixture(scope="module")
def defective() -> Iterator[str]:
    with serve_app(service(env_served=True, reflect=True, any_jwt=True)) as url:
        yield url


@pytest.fixture(scope="module")
def clean() -> Iterator[str]:
    with serve_app(service(env_served=False, reflect=False, any_jwt=False)) as url:
        yield url


def target(target_for: Callable[..., Target], url: str) -> Target:
    return target_for(url, retries=0, protected=["GET /api/agents"], allowed_origins=[])


@pytest.mark.parametrize(("check_id", "subject", "shown"), [
    ("exposure.sensitive_paths", "", "/.env"),
    ("cors.unknown_origin_rejected", "/", f"{UNKNOWN_ORIGIN} was echoed"),
    ("cors.null_origin_rejected", "/", "'Origin: null' is allowed"),
    ("auth.invalid_token_rejected", "GET /api/agents", "with a made-up token answered 200"),
])
def test_a_defect_is_reported_though_another_probe_was_rate_limited(
        defective: str, target_for: Callable[..., Target], check_id: str, subject: str, shown: str) -> None:
    result = run_check(check_id, target(target_for, defective), subject)
    assert result.outcome == "failed", (result.outcome, result.message)
    assert shown in result.message


@pytest.mark.parametrize(("check_id", "subject"), [
    ("exposure.sensitive_paths", ""),
    ("cors.unknown_origin_rejected", "/"),
    ("cors.null_origin_rejected", "/"),
    ("cors.no_wildcard_with_credentials", "/"),
    ("auth.invalid_token_rejected", "GET /api/agents"),
])
def test_without_the_defect_a_missing_answer_is_no_pass(
        clean: str, target_for: Callable[..., Target], check_id: str, subject: str) -> None:
    result = run_check(check_id, target(target_for, clean), subject)
    assert result.outcome == "error", (result.outcome, result.message)
    assert "probes got an answer" in result.message and "429" in result.message
