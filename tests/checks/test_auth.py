"""auth.*: each check fails on a real target with the defect and passes on one without it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace

import pytest
from conftest import make_target
from flask import Flask, Response, request

from pytest_prodready.checking import run_check
from pytest_prodready.checks.auth import GARBAGE_TOKEN
from pytest_prodready.target import Target
from tests.targets.pool import served_pool
from tests.targets.webapp import VALID_TOKEN, Served, serve_app

AGENTS = "GET /api/agents"
CHAT = "POST /api/chat"


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[..., Served]]:
    """The webapp by defect set, one server per set for the whole module."""
    with served_pool() as get:
        yield get


@pytest.fixture(scope="module")
def jwt_shape_only() -> Iterator[str]:
    """A real service that checks a token's *shape* but never its signature (a common bug)."""
    flask_app = Flask("jwt_shape_only")

    @flask_app.route("/api/agents")
    def agents() -> Response:
        value = request.headers.get("Authorization", "")
        if value.startswith("Bearer ") and value.count(".") == 2:
            return Response(json.dumps([{"id": 1}]), mimetype="application/json")
        return Response('{"error": "unauthorized"}', 401, mimetype="application/json")

    with serve_app(flask_app) as url:
        yield url


def authorizations(served: Served, path: str) -> list[str]:
    """The Authorization headers the target really received on `path`."""
    return [s.headers.get("Authorization", "") for s in served.log if s.path == path]


# -- auth.required ------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", [AGENTS, CHAT])
def test_required_passes_when_anonymous_gets_401(
        app: Callable[..., Served], target_for: Callable[..., Target], endpoint: str) -> None:
    """A GET and a POST endpoint that answer 401 to anonymous callers pass."""
    result = run_check("auth.required", target_for(app()), endpoint)
    assert result.outcome == "passed", result.detail
    assert result.message == f"{endpoint} refuses anonymous callers (401)"
    [exchange] = result.exchanges
    assert exchange.status == 401
    assert "Authorization" not in dict(exchange.request_headers)


def test_required_fails_when_endpoint_is_open(app: Callable[..., Served],
                                              target_for: Callable[..., Target]) -> None:
    """An endpoint that serves anonymous callers fails, with the 200 exchange as evidence."""
    result = run_check("auth.required", target_for(app("open_api")), AGENTS)
    assert result.outcome == "failed"
    assert result.message == f"{AGENTS} without credentials answered 200: anyone can call it"
    assert result.severity == "critical"
    assert "/api/agents" in result.detail and "< 200 OK" in result.detail
    assert "Fix: Require authentication" in result.detail
    assert '[{"id": 1, "name": "agent"}]' in result.detail  # the data anyone could read
    assert [ex.status for ex in result.exchanges] == [200]


def test_required_5xx_is_a_failure_not_a_pass(app: Callable[..., Served],
                                              target_for: Callable[..., Target]) -> None:
    """A 500 to anonymous callers is not a refusal: the check fails and says it errored."""
    result = run_check("auth.required", target_for(app("api_500")), AGENTS)
    assert result.outcome == "failed"
    assert "errored with 500 instead of refusing (expected 401/403)" in result.message
    assert "< 500" in result.detail


def test_required_redirect_to_login_counts_as_refused(app: Callable[..., Served],
                                                      target_for: Callable[..., Target]) -> None:
    """A 302 to /login is how web apps refuse: it passes, and the redirect is not followed."""
    served = app("login_redirect")
    result = run_check("auth.required", target_for(served), AGENTS)
    assert result.outcome == "passed", result.detail
    assert result.message == f"{AGENTS} refuses anonymous callers (302 redirect to the login page)"
    [exchange] = result.exchanges
    assert exchange.status == 302
    assert exchange.header("Location") == "/login?next=/api/agents"
    assert not any(s.path.startswith("/login") for s in served.log)


def test_required_redirect_elsewhere_is_not_a_refusal(app: Callable[..., Served],
                                                      target_for: Callable[..., Target]) -> None:
    """A 302 to the home page is not a login redirect: the check fails."""
    result = run_check("auth.required", target_for(app("redirect_home")), AGENTS)
    assert result.outcome == "failed"
    assert result.message == f"{AGENTS} without credentials answered 302 (expected 401/403)"
    assert "Location: /" in result.detail


def test_required_404_fails_with_a_hint_to_check_the_path(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A protected endpoint that does not exist fails, pointing at the 'protected' setting."""
    result = run_check("auth.required", target_for(app()), "GET /api/agentz")
    assert result.outcome == "failed"
    assert "answered 404: check the path in 'protected' (expected 401/403)" in result.message
    assert "GET http://127.0.0.1" in result.detail and "/api/agentz" in result.detail


def test_required_not_configured_is_skipped(app: Callable[..., Served],
                                            target_for: Callable[..., Target]) -> None:
    """With no protected endpoints configured the check skips, naming the key; nothing is sent."""
    result = run_check("auth.required", target_for(app(), protected=[]), AGENTS)
    assert result.outcome == "skipped"
    assert result.message == "not configured: set protected"
    assert not result.exchanges


# -- auth.invalid_token_rejected ----------------------------------------------------------
@pytest.mark.parametrize("endpoint", [AGENTS, CHAT])
def test_invalid_token_passes_when_made_up_tokens_get_401(
        app: Callable[..., Served], target_for: Callable[..., Target], endpoint: str) -> None:
    """Both made-up tokens (garbage and a foreign-key JWT) get 401: the check passes."""
    result = run_check("auth.invalid_token_rejected", target_for(app()), endpoint)
    assert result.outcome == "passed", result.detail
    assert result.message == f"{endpoint} refuses malformed and unknown tokens"
    assert [ex.status for ex in result.exchanges] == [401, 401]


def test_invalid_token_fails_when_any_token_is_accepted(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A target that accepts any bearer token fails; the tokens are masked in the evidence."""
    served = app("accepts_any_token")
    result = run_check("auth.invalid_token_rejected", target_for(served), AGENTS)
    assert result.outcome == "failed"
    assert result.message == f"{AGENTS} with a made-up token answered 200: anyone can call it"
    assert [ex.status for ex in result.exchanges] == [200, 200]
    # The target really got both kinds of made-up token...
    sent = authorizations(served, "/api/agents")
    assert f"Bearer {GARBAGE_TOKEN}" in sent
    assert any(v.startswith("Bearer ey") and v.count(".") == 2 for v in sent)
    # ...and the evidence shows the header with its value masked.
    assert "> Authorization: Bearer ****" in result.detail
    assert GARBAGE_TOKEN not in result.detail


def test_invalid_token_fails_when_only_signature_is_unchecked(
        jwt_shape_only: str, target_for: Callable[..., Target]) -> None:
    """A target that refuses garbage but takes any well-formed JWT still fails."""
    result = run_check("auth.invalid_token_rejected", target_for(jwt_shape_only), AGENTS)
    assert result.outcome == "failed"
    assert "with a made-up token answered 200" in result.message
    [accepted] = result.exchanges  # only the forged JWT got through
    assert accepted.status == 200


def test_invalid_token_anonymous_refusal_alone_does_not_pass(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """auth.required passes on this target yet the token check fails: they judge different things."""
    target = target_for(app("accepts_any_token"))
    assert run_check("auth.required", target, AGENTS).outcome == "passed"
    assert run_check("auth.invalid_token_rejected", target, AGENTS).outcome == "failed"


def test_invalid_token_not_configured_is_skipped(app: Callable[..., Served],
                                                 target_for: Callable[..., Target]) -> None:
    """With no protected endpoints configured the check skips, naming the key."""
    result = run_check("auth.invalid_token_rejected", target_for(app(), protected=[]), AGENTS)
    assert result.outcome == "skipped"
    assert "protected" in result.message


# -- the run's credential given as a request header (`--header "Authorization: ..."`) ---------
def with_request_header(served: Served, name: str, value: str) -> Target:
    """The webapp's target with one `request_headers` entry, its value from its env var."""
    settings = make_target(served.url).settings
    return Target(replace(settings, values={**settings.values, "request_headers": [
        {"name": name, "value_env": "PRODREADY_TEST_HEADER"}]},
        secrets={**settings.secrets, "request_headers[0].value_env": value}))


def test_a_credential_request_header_is_not_sent_on_the_anonymous_probes(
        app: Callable[..., Served]) -> None:
    """A team passing its token as a request header gets it on ordinary probes, and the auth
    checks still ask what an anonymous caller (or a forged token) gets: the real token
    never rides along, so a protected API is not reported open."""
    served = app()
    with closing(with_request_header(served, "Authorization", f"Bearer {VALID_TOKEN}")) as target:
        required = run_check("auth.required", target, AGENTS)
        assert required.outcome == "passed", required.detail
        assert run_check("auth.invalid_token_rejected", target, AGENTS).outcome == "passed"
        sent = authorizations(served, "/api/agents")
        assert sent and f"Bearer {VALID_TOKEN}" not in sent
        # The ordinary page probe still carries it (the header is for every other request).
        run_check("headers.hsts", target, "/")
    assert f"Bearer {VALID_TOKEN}" in authorizations(served, "/")


def test_with_a_credential_request_header_an_open_endpoint_still_fails(app: Callable[..., Served]) -> None:
    with closing(with_request_header(app("open_api"), "Authorization", f"Bearer {VALID_TOKEN}")) as target:
        result = run_check("auth.required", target, AGENTS)
    assert result.outcome == "failed"
    assert result.message == f"{AGENTS} without credentials answered 200: anyone can call it"


def test_a_gate_header_of_another_name_still_reaches_the_anonymous_probe(app: Callable[..., Served]) -> None:
    """A staging gate's header (not the credential header) is on every request: without it the
    anonymous probe would only meet the gate."""
    served = app()
    with closing(with_request_header(served, "X-Gate", "gate-secret-value")) as target:
        assert run_check("auth.required", target, AGENTS).outcome == "passed"
    assert [s.headers.get("X-Gate") for s in served.log if s.path == "/api/agents"][-1] == "gate-secret-value"


# -- what counts as a redirect to a login page ----------------------------------------------
LOGIN_PAGES = {  # where real frameworks send an anonymous caller
    "django": "/accounts/login/?next=/api/agents",
    "devise": "/users/sign_in",
    "aspnet": "/Account/Login?ReturnUrl=%2Fapi%2Fagents",
    "wordpress": "/wp-login.php?redirect_to=x",
    "keycloak": "https://sso.example.com/realms/app/protocol/openid-connect/auth?client_id=app",
    "azure": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=x",
}
NOT_LOGIN_PAGES = {"authors": "/authors", "blog": "/blog/logins-explained", "home": "/"}


@pytest.fixture(scope="module")
def redirector() -> Iterator[str]:
    """A service whose /api/<name> answers an anonymous caller with a 302 to a given page."""
    flask_app = Flask("redirector")

    @flask_app.route("/api/<name>")
    def api(name: str) -> Response:
        return Response("", 302, {"Location": {**LOGIN_PAGES, **NOT_LOGIN_PAGES}[name]})

    with serve_app(flask_app) as url:
        yield url


@pytest.mark.parametrize("name", LOGIN_PAGES)
def test_required_knows_the_login_pages_of_real_frameworks(
        redirector: str, target_for: Callable[..., Target], name: str) -> None:
    result = run_check("auth.required", target_for(redirector), f"GET /api/{name}")
    assert result.outcome == "passed", result.message
    assert result.message.endswith("(302 redirect to the login page)")


@pytest.mark.parametrize("name", NOT_LOGIN_PAGES)
def test_a_word_inside_a_path_word_is_no_login_page(
        redirector: str, target_for: Callable[..., Target], name: str) -> None:
    """'/authors' has 'auth' in it and '/blog/logins-explained' has 'login': neither is a
    login page, so an open endpoint redirecting there fails."""
    result = run_check("auth.required", target_for(redirector), f"GET /api/{name}")
    assert result.outcome == "failed", result.message
    assert result.message.endswith("answered 302 (expected 401/403)")
