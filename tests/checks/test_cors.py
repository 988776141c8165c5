"""cors.*: each check fails on a real target with the defect and passes on one without.

The shared webapp gives the defect/no-defect pairs (cors_reflect, cors_null,
cors_wildcard_credentials, cors_refuses_allowed). Policies it cannot express ('*' without
credentials, reflection without credentials, a policy shown only on the preflight) are
served by a small Flask app of this module on the same real Werkzeug server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response, request

from pytest_prodready.checking import run_check
from pytest_prodready.checks.common import UNKNOWN_ORIGIN
from pytest_prodready.checks.cors import lookalike_origins
from pytest_prodready.registry import get_check
from pytest_prodready.target import Target
from tests.targets.webapp import ALLOWED_ORIGIN, Served, serve_app

TargetFor = Callable[..., Target]
WebApp = Callable[..., Served]
PATHS = ["/", "/api/agents"]  # the webapp's cors_paths: the page and the protected GET


def policy_app() -> Flask:
    """/<policy> answers GET and OPTIONS with that CORS policy for whatever Origin is sent."""
    app = Flask("cors_edge_cases")

    @app.route("/<policy>", methods=["GET", "OPTIONS"])
    def page(policy: str) -> Response:
        resp = Response(status=204) if request.method == "OPTIONS" else Response("{}")
        origin = request.headers.get("Origin", "")
        h = resp.headers
        if policy == "star":  # a public API: any origin may read, never with credentials
            h["Access-Control-Allow-Origin"] = "*"
        elif policy == "reflect-without-credentials":
            h["Access-Control-Allow-Origin"] = origin
            h["Vary"] = "Origin"
        elif policy == "preflight-reflect" and request.method == "OPTIONS":
            h["Access-Control-Allow-Origin"] = origin
            h["Access-Control-Allow-Credentials"] = "true"
            h["Access-Control-Allow-Headers"] = "authorization"
        return resp

    return app


@pytest.fixture(scope="module")
def policy_url() -> Iterator[str]:
    """The policy app on a real Werkzeug server on 127.0.0.1."""
    with serve_app(policy_app()) as url:
        yield url


def origins_seen(served: Served, path: str) -> set[tuple[str, str]]:
    """(method, Origin) pairs the target received on `path`."""
    return {(s.method, s.headers.get("Origin", "")) for s in served.log if s.path == path}


def test_cors_subjects_are_the_page_and_protected_gets(good_app: Served,
                                                       target_for: TargetFor) -> None:
    """Without cors_paths the checks ask the page and every protected GET path."""
    target = target_for(good_app)
    assert get_check("cors.unknown_origin_rejected").subjects_for(target.settings) == PATHS
    scoped = target.scoped(cors_paths=["/api/health"])
    assert get_check("cors.null_origin_rejected").subjects_for(scoped.settings) == ["/api/health"]


def test_without_a_subject_the_page_is_asked(good_app: Served, target_for: TargetFor) -> None:
    """run_check with no subject asks the configured page, and says so."""
    result = run_check("cors.unknown_origin_rejected", target_for(good_app, page="/api/health"))
    assert result.outcome == "passed", result.message
    assert result.message.startswith(f"{UNKNOWN_ORIGIN} not granted on /api/health (answered: ")
    assert {ex.where for ex in result.exchanges} == {"GET /api/health", "OPTIONS /api/health"}


# -- cors.unknown_origin_rejected ---------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_unknown_origin_echoed_fails(webapp: WebApp, target_for: TargetFor, path: str) -> None:
    """A target reflecting any Origin fails on both the GET and the preflight; the evidence
    shows the origin sent and the same origin echoed back."""
    served = webapp("cors_reflect")
    result = run_check("cors.unknown_origin_rejected", target_for(served), path)
    assert result.outcome == "failed", result.message
    assert result.message == (f"{UNKNOWN_ORIGIN} was echoed in Access-Control-Allow-Origin with "
                              f"credentials allowed (GET {path}, OPTIONS {path})")
    assert f"> Origin: {UNKNOWN_ORIGIN}" in result.detail
    assert f"< Access-Control-Allow-Origin: {UNKNOWN_ORIGIN}" in result.detail
    # the made-up origin, and the look-alikes of the allowed one (see test_cors_lookalikes.py)
    sent = {("GET", UNKNOWN_ORIGIN), ("OPTIONS", UNKNOWN_ORIGIN)}
    sent |= {(m, o) for o in lookalike_origins([ALLOWED_ORIGIN]) for m in ("GET", "OPTIONS")}
    assert origins_seen(served, path) == sent


@pytest.mark.parametrize("path", PATHS)
def test_unknown_origin_not_granted_passes(good_app: Served, target_for: TargetFor,
                                           path: str) -> None:
    """The good target grants only its own origin: an unknown one passes."""
    result = run_check("cors.unknown_origin_rejected", target_for(good_app), path)
    assert result.outcome == "passed", result.message
    assert result.message == (f"{UNKNOWN_ORIGIN} not granted on {path} "
                              "(answered: no Access-Control-Allow-Origin)")
    assert all(ex.header("Access-Control-Allow-Origin") is None for ex in result.exchanges)


def test_unknown_origin_passes_when_only_null_is_allowed(webapp: WebApp,
                                                         target_for: TargetFor) -> None:
    """The check is about unknown origins: allowing only 'null' is another check's defect."""
    result = run_check("cors.unknown_origin_rejected", target_for(webapp("cors_null")), "/")
    assert result.outcome == "passed", result.message


@pytest.mark.parametrize(("policy", "outcome", "fragment"), [
    ("star", "failed", "though allowed_origins lists the origins allowed"),
    ("reflect-without-credentials", "failed",
     "echoed in Access-Control-Allow-Origin (GET /reflect-without-credentials, OPTIONS "),
    ("preflight-reflect", "failed", "with credentials allowed (OPTIONS /preflight-reflect)"),
])
def test_unknown_origin_edge_cases(policy_url: str, target_for: TargetFor, policy: str,
                                   outcome: str, fragment: str) -> None:
    """'*' contradicts the configured allowed_origins; a reflection fails even without
    credentials, and a reflection shown only on the preflight is still found."""
    result = run_check("cors.unknown_origin_rejected", target_for(policy_url), f"/{policy}")
    assert result.outcome == outcome, result.message
    assert fragment in result.message


# -- cors.null_origin_rejected --------------------------------------------------------------------

@pytest.mark.parametrize("defect", ["cors_null", "cors_reflect"])
def test_null_origin_allowed_fails(webapp: WebApp, target_for: TargetFor, defect: str) -> None:
    """Allowing 'null' (explicitly, or by reflecting anything) fails with the evidence."""
    served = webapp(defect)
    result = run_check("cors.null_origin_rejected", target_for(served), "/api/agents")
    assert result.outcome == "failed", result.message
    assert result.message == "'Origin: null' is allowed (GET /api/agents, OPTIONS /api/agents)"
    assert "> Origin: null" in result.detail
    assert "< Access-Control-Allow-Origin: null" in result.detail
    assert origins_seen(served, "/api/agents") == {("GET", "null"), ("OPTIONS", "null")}


def test_null_origin_refused_passes(good_app: Served, target_for: TargetFor) -> None:
    """The good target does not grant 'null'."""
    result = run_check("cors.null_origin_rejected", target_for(good_app), "/")
    assert result.outcome == "passed", result.message
    assert result.message == "'null' origin not granted on /"


# -- cors.no_wildcard_with_credentials -------------------------------------------------------------

@pytest.mark.parametrize(("defect", "acao"), [
    ("cors_wildcard_credentials", "*"),
    ("cors_reflect", UNKNOWN_ORIGIN),
])
def test_credentials_for_unknown_origin_fail(webapp: WebApp, target_for: TargetFor, defect: str,
                                             acao: str) -> None:
    """'*' or a reflected origin together with Allow-Credentials: true fails, quoting the
    Allow-Origin value; the evidence shows the credentials header."""
    result = run_check("cors.no_wildcard_with_credentials", target_for(webapp(defect)), "/")
    assert result.outcome == "failed", result.message
    assert result.message == (f"Access-Control-Allow-Origin {acao!r} together with "
                              "Access-Control-Allow-Credentials: true for an unknown origin "
                              "(GET /, OPTIONS /)")
    assert f"< Access-Control-Allow-Origin: {acao}" in result.detail
    assert "< Access-Control-Allow-Credentials: true" in result.detail


def test_credentials_only_for_listed_origin_pass(good_app: Served, target_for: TargetFor) -> None:
    """The good target sends credentials only to its listed origin: passes."""
    result = run_check("cors.no_wildcard_with_credentials", target_for(good_app), "/api/agents")
    assert result.outcome == "passed", result.message
    assert result.message == "no credentialed CORS for unknown origins on /api/agents"


@pytest.mark.parametrize("policy", ["star", "reflect-without-credentials"])
def test_wildcard_or_reflection_without_credentials_pass(policy_url: str, target_for: TargetFor,
                                                         policy: str) -> None:
    """Without Allow-Credentials, '*' or a reflection is not this check's defect."""
    result = run_check("cors.no_wildcard_with_credentials", target_for(policy_url), f"/{policy}")
    assert result.outcome == "passed", result.message


def test_wildcard_with_credentials_fails_both_checks_when_origins_are_listed(
        webapp: WebApp, target_for: TargetFor) -> None:
    """With allowed_origins configured, '*' contradicts the list (unknown_origin fails, and
    says so); no_wildcard_with_credentials catches the '*' + credentials defect on its own."""
    target = target_for(webapp("cors_wildcard_credentials"))
    result = run_check("cors.unknown_origin_rejected", target, "/")
    assert result.outcome == "failed", result.message
    assert "Access-Control-Allow-Origin: * grants" in result.message
    assert "allowed_origins lists the origins allowed" in result.message
    assert run_check("cors.no_wildcard_with_credentials", target, "/").outcome == "failed"


def test_wildcard_contradicts_allowed_origins(policy_url: str, target_for: TargetFor) -> None:
    """'*' without credentials while the team lists its origins: a failure, not "not granted"."""
    result = run_check("cors.unknown_origin_rejected", target_for(policy_url), "/star")
    assert result.outcome == "failed", result.message
    assert "not granted" not in result.message


def test_wildcard_of_a_public_api_passes_and_says_so(policy_url: str, target_for: TargetFor) -> None:
    """No allowed_origins: '*' is a public API's policy. The pass message says what was seen
    (it never claims the origin was "not granted")."""
    result = run_check("cors.unknown_origin_rejected", target_for(policy_url, allowed_origins=[]),
                       "/star")
    assert result.outcome == "passed", result.message
    assert result.message.startswith("Access-Control-Allow-Origin: * on /star (a public API")
    assert "not granted" not in result.message


def test_pass_message_names_what_the_target_answered(good_app: Served, target_for: TargetFor) -> None:
    result = run_check("cors.unknown_origin_rejected", target_for(good_app), "/api/agents")
    assert result.outcome == "passed", result.message
    assert "not granted on /api/agents (answered: no Access-Control-Allow-Origin)" in result.message


# -- cors.allowed_origin_accepted ------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_allowed_origin_refused_fails(webapp: WebApp, target_for: TargetFor, path: str) -> None:
    """A target that refuses the configured origin fails the positive control, naming it;
    the evidence shows the origin sent and no Allow-Origin in the answers."""
    served = webapp("cors_refuses_allowed")
    result = run_check("cors.allowed_origin_accepted", target_for(served), path)
    assert result.outcome == "failed", result.message
    assert result.message == f"configured origin(s) not allowed on {path}: {ALLOWED_ORIGIN}"
    assert f"> Origin: {ALLOWED_ORIGIN}" in result.detail
    assert "< Access-Control-Allow-Origin" not in result.detail
    assert origins_seen(served, path) == {("GET", ALLOWED_ORIGIN), ("OPTIONS", ALLOWED_ORIGIN)}


@pytest.mark.parametrize("path", PATHS)
def test_allowed_origin_granted_passes(good_app: Served, target_for: TargetFor, path: str) -> None:
    """The good target grants its configured origin."""
    result = run_check("cors.allowed_origin_accepted", target_for(good_app), path)
    assert result.outcome == "passed", result.message
    assert result.message == "all 1 configured origin(s) allowed"


def test_only_the_refused_origin_is_named(good_app: Served, target_for: TargetFor) -> None:
    """Of two configured origins, the one the target does not allow is the one reported."""
    target = target_for(good_app, allowed_origins=[ALLOWED_ORIGIN, "https://admin.example.com"])
    result = run_check("cors.allowed_origin_accepted", target, "/")
    assert result.outcome == "failed"
    assert result.message == "configured origin(s) not allowed on /: https://admin.example.com"


def test_wildcard_accepts_the_configured_origin(policy_url: str, target_for: TargetFor) -> None:
    """'*' allows every origin, the configured one included."""
    result = run_check("cors.allowed_origin_accepted", target_for(policy_url), "/star")
    assert result.outcome == "passed", result.message


def test_allowed_origin_skipped_without_config(good_app: Served, target_for: TargetFor) -> None:
    """With no allowed_origins there is no positive control: skipped, naming the key."""
    result = run_check("cors.allowed_origin_accepted", target_for(good_app, allowed_origins=[]),
                       "/")
    assert result.outcome == "skipped"
    assert result.message == "not configured: set allowed_origins"


def test_down_target_is_an_error(target_for: TargetFor) -> None:
    """A target that does not answer cannot be judged: error, not a pass."""
    result = run_check("cors.unknown_origin_rejected",
                       target_for("http://127.0.0.1:9", timeout_s=2, retries=0), "/")
    assert result.outcome == "error"
    assert "connection refused" in result.message
