"""errors.*: each check fails on a real target with the defect and passes on one without it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from pytest_prodready.checking import run_check
from pytest_prodready.checks.common import NOT_FOUND_PATH
from pytest_prodready.checks.errors import MALFORMED_JSON
from pytest_prodready.target import Target
from tests.targets.pool import served_pool, without_secrets
from tests.targets.webapp import VALID_TOKEN, Served

CHAT = "POST /api/chat"


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[..., Served]]:
    """The webapp by defect set, one server per set for the whole module."""
    with served_pool() as get:
        yield get


# -- errors.not_found_is_404 --------------------------------------------------------------
def test_not_found_passes_on_404(app: Callable[..., Served],
                                 target_for: Callable[..., Target]) -> None:
    """An unknown path answered 404 passes."""
    result = run_check("errors.not_found_is_404", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == "unknown path answered 404"
    assert [urlsplit(ex.url).path for ex in result.exchanges] == [NOT_FOUND_PATH]


@pytest.mark.parametrize("defect", ["spa", "soft_404"])
def test_not_found_fails_on_soft_404(app: Callable[..., Served],
                                     target_for: Callable[..., Target], defect: str) -> None:
    """An SPA index or a JSON error with status 200 for an unknown path fails."""
    result = run_check("errors.not_found_is_404", target_for(app(defect)))
    assert result.outcome == "failed"
    assert result.message == "an unknown path answered 200, expected 404"
    assert NOT_FOUND_PATH in result.detail and "< 200 OK" in result.detail


# -- errors.malformed_input_is_4xx --------------------------------------------------------
def test_malformed_input_passes_on_400(app: Callable[..., Served],
                                       target_for: Callable[..., Target]) -> None:
    """Malformed JSON sent with the configured token gets 400: passes."""
    served = app()
    result = run_check("errors.malformed_input_is_4xx", target_for(served), CHAT)
    assert result.outcome == "passed", result.detail
    assert result.message == "malformed JSON answered 400"
    [exchange] = result.exchanges
    assert exchange.method == "POST" and exchange.request_body == MALFORMED_JSON
    # The token reached the target, so the body really reached the parser...
    assert any(s.path == "/api/chat" and s.headers.get("Authorization") == f"Bearer {VALID_TOKEN}"
               for s in served.log)
    # ...but the recorded evidence holds it masked.
    assert dict(exchange.request_headers)["Authorization"] == "Bearer ****"


@pytest.mark.parametrize(("defect", "status"), [("stack_trace", 500), ("malformed_200", 200)])
def test_malformed_input_fails_on_500_and_on_200(
        app: Callable[..., Served], target_for: Callable[..., Target], defect: str,
        status: int) -> None:
    """Malformed JSON answered 500 (crash) or 200 (accepted) fails, with the status in words."""
    result = run_check("errors.malformed_input_is_4xx", target_for(app(defect)), CHAT)
    assert result.outcome == "failed"
    assert result.message == f"malformed JSON to {CHAT} answered {status}, expected 400 or 422"
    assert f"< {status}" in result.detail
    assert '> {"prodready": "malformed", ' in result.detail  # the request that was sent
    assert VALID_TOKEN not in result.detail


def test_malformed_input_401_without_token_is_skipped(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """With no token configured the endpoint refuses before parsing: skipped, naming auth.token_env."""
    with without_secrets(target_for(app(), auth={}), "auth.token_env") as target:
        result = run_check("errors.malformed_input_is_4xx", target, CHAT)
    assert result.outcome == "skipped"
    assert "refused the call (401) before parsing the body" in result.message
    assert "set auth.token_env" in result.message
    assert "Authorization" not in dict(result.exchanges[0].request_headers)


def test_malformed_input_401_with_a_wrong_token_says_so(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A configured token that is refused is named as the problem, not as missing config."""
    base = target_for(app())
    settings = replace(base.settings, secrets={"auth.token_env": "tok-not-the-right-one"})
    with Target(settings) as target:
        result = run_check("errors.malformed_input_is_4xx", target, CHAT)
    assert result.outcome == "skipped"
    assert "refused the token from auth.token_env (401)" in result.message
    assert "tok-not-the-right-one" not in result.message


@pytest.mark.parametrize(("endpoint", "status"), [("POST /api/nope", 404),
                                                  ("POST /api/agents", 405)])
def test_malformed_input_wrong_endpoint_fails_with_hint(
        app: Callable[..., Served], target_for: Callable[..., Target], endpoint: str,
        status: int) -> None:
    """An endpoint that does not exist or takes no POST fails, pointing at the setting."""
    result = run_check("errors.malformed_input_is_4xx", target_for(app()), endpoint)
    assert result.outcome == "failed"
    assert result.message == (f"{endpoint} answered {status}: check the endpoint in "
                              "errors.json_endpoints")


def test_malformed_input_not_configured_is_skipped(app: Callable[..., Served],
                                                   target_for: Callable[..., Target]) -> None:
    """No JSON endpoints (none configured, no POST in protected): skipped, naming the key."""
    target = target_for(app(), errors={}, protected=["GET /api/agents"])
    result = run_check("errors.malformed_input_is_4xx", target)
    assert result.outcome == "skipped"
    assert "errors.json_endpoints" in result.message
    assert not result.exchanges


def test_malformed_input_endpoints_default_to_protected_posts(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """Without errors.json_endpoints, the POST endpoints in protected are the subjects."""
    from pytest_prodready.registry import get_check

    target = target_for(app("stack_trace"), errors={})
    assert get_check("errors.malformed_input_is_4xx").subjects_for(target.settings) == [CHAT]
    assert run_check("errors.malformed_input_is_4xx", target, CHAT).outcome == "failed"


# -- errors.no_stack_traces ---------------------------------------------------------------
def test_no_stack_traces_passes_on_clean_errors(app: Callable[..., Served],
                                                target_for: Callable[..., Target]) -> None:
    """Unknown paths, odd parameters and malformed JSON give clean errors: passes."""
    result = run_check("errors.no_stack_traces", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"no stack trace in {len(result.exchanges)} error response(s)"
    assert {ex.method for ex in result.exchanges} == {"GET", "POST"}


def test_no_stack_traces_fails_on_python_traceback(app: Callable[..., Served],
                                                   target_for: Callable[..., Target]) -> None:
    """A 500 with a Python traceback for malformed JSON fails, with the trace as evidence."""
    result = run_check("errors.no_stack_traces", target_for(app("stack_trace")))
    assert result.outcome == "failed"
    assert result.message == "stack traces exposed: Python traceback in POST /api/chat (500)"
    assert "Traceback (most recent call last)" in result.detail
    assert 'File "/srv/app/views.py", line 42' in result.detail
    assert [ex.status for ex in result.exchanges] == [500]


# -- errors.no_internal_hosts -------------------------------------------------------------
def test_no_internal_hosts_passes_on_clean_responses(app: Callable[..., Served],
                                                     target_for: Callable[..., Target]) -> None:
    """The clean target passes; its own loopback address is not an internal leak."""
    result = run_check("errors.no_internal_hosts", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"no internal address in {len(result.exchanges)} response(s)"


def test_no_internal_hosts_fails_on_private_backend_header(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A header naming a private backend address fails, naming the address and where."""
    result = run_check("errors.no_internal_hosts", target_for(app("internal_host")))
    assert result.outcome == "failed"
    assert result.message.startswith("internal addresses in responses: 10.0.3.7 in GET /;")
    assert "< X-Backend-Server: 10.0.3.7:8080" in result.detail


def test_no_internal_hosts_fails_on_internal_host_name(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """An internal host name (db.internal) in a response body fails."""
    result = run_check("errors.no_internal_hosts", target_for(app("secret_leak")))
    assert result.outcome == "failed"
    assert result.message == "internal addresses in responses: db.internal in GET /api/health"
