"""cors.unknown_origin_rejected's look-alike origins against the origin matching of real
CORS libraries: flask-cors (a regex origin is matched with `re.match`: start-anchored
only) and Starlette's CORSMiddleware (`allow_origin_regex` with `fullmatch`). A pattern
that grants an origin an attacker can register fails; an exact or fully anchored one
passes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask_cors import CORS
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pytest_prodready.checking import run_check
from pytest_prodready.checks.cors import lookalike_origins
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
from tests.targets.frameworks import serve_asgi
from tests.targets.webapp import serve_app

ALLOWED = "https://app.example.com"
CHECK = "cors.unknown_origin_rejected"


def flask_cors_app(origins: list[Any]) -> Flask:
    app = Flask("flask_cors_lookalikes")

    @app.get("/api/data")
    def data() -> str:
        return "{}"

    CORS(app, origins=origins, supports_credentials=True)
    return app


def starlette_app(regex: str) -> Starlette:
    async def data(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("{}")

    return Starlette(routes=[Route("/api/data", data)], middleware=[
        Middleware(CORSMiddleware, allow_origin_regex=regex, allow_credentials=True,
                   allow_methods=["GET"], allow_headers=["authorization"])])


def judged(url: str) -> Any:
    values = {**DEFAULTS, "base_url": url, "allowed_origins": [ALLOWED]}
    with Target(Settings(values=values, secrets={}, sources={})) as target:
        return run_check(CHECK, target, "/api/data")


@pytest.mark.parametrize(("origins", "granted", "why"), [
    # flask-cors treats a string with regex characters as a pattern and matches it with
    # re.match: nothing anchors its end
    ([r"https://app\.example\.com"], "https://app.example.com.prodready-lookalike.example",
     "a prefix match for https://app.example.com (no end anchor)"),
    ([re.compile(r"https://.*example\.com$")], "https://prodreadyexample.com",
     "a suffix match for https://app.example.com without a dot boundary"),
], ids=["unanchored-end", "no-dot-boundary"])
def test_flask_cors_patterns_that_grant_a_lookalike_fail(origins: list[Any], granted: str, why: str) -> None:
    with serve_app(flask_cors_app(origins)) as url:
        result = judged(url)
    assert result.outcome == "failed", result.message
    assert result.message.startswith(f"the look-alike origin {granted} was granted with credentials "
                                     f"allowed: {why}")
    assert f"< Access-Control-Allow-Origin: {granted}" in result.detail


def test_flask_cors_with_exact_origins_passes() -> None:
    with serve_app(flask_cors_app([ALLOWED])) as url:
        result = judged(url)
    assert result.outcome == "passed", result.message


def test_starlette_regex_with_an_unescaped_dot_fails() -> None:
    """fullmatch anchors both ends, but 'app.example.com' unescaped also matches app-example.com."""
    with serve_asgi(starlette_app(r"https://app.example.com")) as url:
        result = judged(url)
    assert result.outcome == "failed", result.message
    assert "the look-alike origin https://app-example.com was granted" in result.message
    assert "'.' matching any character in the pattern for https://app.example.com" in result.message


def test_starlette_regex_anchored_and_escaped_passes() -> None:
    """A subdomain pattern done right grants none of the look-alikes (none is a subdomain)."""
    with serve_asgi(starlette_app(r"https://([a-z0-9-]+\.)?example\.com")) as url:
        result = judged(url)
    assert result.outcome == "passed", result.message


def test_lookalikes_are_never_the_allowed_origins_own_subdomains() -> None:
    made = lookalike_origins([ALLOWED, "https://example.com:8443", "http://localhost:3000",
                              "http://10.0.0.7"])
    assert made and all(not o.split("://")[1].split(":")[0].endswith(".example.com") for o in made)
    assert not any("localhost" in o or "10.0.0.7" in o for o in made)
