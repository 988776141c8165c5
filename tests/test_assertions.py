"""The public one-line helpers, against real servers: each one fails on the defect it names,
showing the request sent, the response seen and the fix (secrets masked), and stays quiet
on the well-configured service."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready import assertions
from pytest_prodready.assertions import (
    assert_check,
    assert_cookie_flags,
    assert_cors_allows_origin,
    assert_cors_rejects_null_origin,
    assert_cors_rejects_unknown_origin,
    assert_healthy,
    assert_malformed_json_rejected,
    assert_no_admin_surfaces,
    assert_no_internal_hosts,
    assert_no_secrets_in_responses,
    assert_no_stack_traces,
    assert_not_found_is_404,
    assert_not_served,
    assert_prometheus_metrics,
    assert_rejects_invalid_token,
    assert_requires_auth,
    assert_security_headers,
    assert_version_exposed,
)
from pytest_prodready.exceptions import CannotJudge, CheckFailure
from pytest_prodready.registry import get_check
from pytest_prodready.target import Target
from tests.targets.webapp import ALLOWED_ORIGIN, METRICS_TOKEN, VALID_TOKEN, Served, serve

SECRETS = (VALID_TOKEN, METRICS_TOKEN)
NOT_FOUND = "/prodready-nonexistent-3f9c1a7e"


@dataclass(frozen=True)
class Case:
    """One helper call, a defect it must catch, and the evidence its failure must show."""

    helper: Callable[..., Any]
    args: tuple[Any, ...]
    defects: tuple[str, ...]
    request: str  # "METHOD /path" of an exchange the message must show
    status: int  # the status that exchange got
    check: str  # the check whose verdict and fix the message must show
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, target: Target) -> None:
        self.helper(target, *self.args, **self.kwargs)

    @property
    def id(self) -> str:
        return f"{self.helper.__name__}-{'+'.join(self.defects)}"


CASES = [
    Case(assert_cors_rejects_unknown_origin, ("/api/agents",), ("cors_reflect",),
         "GET /api/agents", 401, "cors.unknown_origin_rejected"),
    Case(assert_cors_rejects_unknown_origin, ("/",), ("cors_wildcard_credentials",),
         "GET /", 200, "cors.no_wildcard_with_credentials"),
    Case(assert_cors_rejects_null_origin, ("/",), ("cors_null",),
         "GET /", 200, "cors.null_origin_rejected"),
    Case(assert_cors_allows_origin, ("/", ALLOWED_ORIGIN), ("cors_refuses_allowed",),
         "GET /", 200, "cors.allowed_origin_accepted"),
    Case(assert_requires_auth, ("GET /api/agents",), ("open_api",),
         "GET /api/agents", 200, "auth.required"),
    Case(assert_requires_auth, ("/api/agents",), ("api_500",),
         "GET /api/agents", 500, "auth.required"),
    Case(assert_rejects_invalid_token, ("/api/agents",), ("accepts_any_token",),
         "GET /api/agents", 200, "auth.invalid_token_rejected"),
    Case(assert_not_served, ("/.env",), ("env_served",),
         "GET /.env", 200, "exposure.sensitive_paths"),
    Case(assert_not_served, (), ("git_served",),
         "GET /.git/config", 200, "exposure.sensitive_paths"),
    Case(assert_no_admin_surfaces, (), ("metrics_public",),
         "GET /metrics", 200, "exposure.admin_surfaces"),
    Case(assert_no_admin_surfaces, (), ("swagger_public",),
         "GET /docs", 200, "exposure.admin_surfaces"),
    Case(assert_no_secrets_in_responses, ("/api/health",), ("secret_leak",),
         "GET /api/health", 200, "exposure.secrets_in_responses"),
    Case(assert_no_secrets_in_responses, (), ("secret_leak",),
         "GET /api/health", 200, "exposure.secrets_in_responses"),
    Case(assert_security_headers, (), ("no_hsts",), "GET /", 200, "headers.hsts"),
    Case(assert_security_headers, ("/",), ("weak_csp",), "GET /", 200, "headers.csp"),
    Case(assert_security_headers, (), ("version_disclosure",),
         "GET /", 200, "headers.no_version_disclosure"),
    Case(assert_cookie_flags, (), ("insecure_cookie",), "GET /", 200, "cookies.flags"),
    Case(assert_not_found_is_404, (), ("soft_404",),
         f"GET {NOT_FOUND}", 200, "errors.not_found_is_404"),
    Case(assert_malformed_json_rejected, ("POST /api/chat",), ("stack_trace",),
         "POST /api/chat", 500, "errors.malformed_input_is_4xx"),
    Case(assert_malformed_json_rejected, ("POST /api/chat",), ("malformed_200",),
         "POST /api/chat", 200, "errors.malformed_input_is_4xx"),
    Case(assert_malformed_json_rejected, ("POST /api/chat",), ("debug_page",),
         "POST /api/chat", 500, "errors.malformed_input_is_4xx"),
    Case(assert_no_stack_traces, (), ("stack_trace",),
         "POST /api/chat", 500, "errors.no_stack_traces"),
    Case(assert_no_internal_hosts, (), ("internal_host",),
         "GET /", 200, "errors.no_internal_hosts"),
    Case(assert_healthy, ("/api/health",), ("health_500",),
         "GET /api/health", 503, "health.endpoint_ok"),
    Case(assert_healthy, ("/api/health",), ("unhealthy",),
         "GET /api/health", 200, "health.endpoint_ok"),
    Case(assert_healthy, ("/api/health",), ("slow_health",),
         "GET /api/health", 200, "health.endpoint_ok", {"budget_ms": 200}),
    Case(assert_version_exposed, (), ("no_version",),
         "GET /version", 404, "health.version_exposed"),
    Case(assert_prometheus_metrics, (), ("bad_metrics",),
         "GET /metrics", 200, "metrics.prometheus_valid"),
    Case(assert_prometheus_metrics, ("/metrics",), ("no_request_metrics",),
         "GET /metrics", 200, "metrics.prometheus_valid"),
    Case(assert_check, ("errors.not_found_is_404",), ("spa",),
         f"GET {NOT_FOUND}", 200, "errors.not_found_is_404"),
]


@pytest.fixture(scope="module")
def module_webapp() -> Iterator[Callable[..., Served]]:
    """Like the conftest's factory, but one server per defect set for the whole module,
    stopped together at the end: each Werkzeug server takes 0.5 s to notice its shutdown."""
    running: dict[frozenset[str], tuple[AbstractContextManager[Served], Served]] = {}

    def factory(*defects: str) -> Served:
        key = frozenset(defects)
        if key not in running:
            manager = serve(key)
            running[key] = (manager, manager.__enter__())
        return running[key][1]

    yield factory
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        list(pool.map(lambda entry: entry[0].__exit__(None, None, None), running.values()))


def failure_of(call: Callable[[], object]) -> str:
    """The helper's failure message, after checking no secret value is in it."""
    with pytest.raises(CheckFailure) as info:
        call()
    message = str(info.value)
    for secret in SECRETS:
        assert secret not in message, f"secret {secret[:4]}… leaked into the assertion message"
    return message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Helpers whose fail/pass pairs need their own kind of target (TLS servers, webhook
# receivers) and live beside their family's tests.
TESTED_WITH_THEIR_FAMILY = {
    "assert_certificate_valid": "tests/checks/test_tls.py::test_assertion_helpers",
    "assert_legacy_tls_refused": "tests/checks/test_tls.py::test_assertion_helpers",
    "assert_redirects_to_https": "tests/checks/test_tls.py::test_assertion_helpers",
    "assert_webhook_verifies_signature": "tests/checks/test_webhooks.py",
    "assert_cannot_read": "tests/checks/test_authz.py",
    "assert_identity_headers_ignored": "tests/checks/test_authz.py",
    "assert_cross_site_write_refused": "tests/checks/test_csrf.py",
    "assert_oauth_state_validated": "tests/checks/test_csrf.py",
    "assert_websocket_requires_auth": "tests/checks/test_websocket.py",
    "assert_rejects_alg_none": "tests/checks/test_jwt.py",
    "assert_rejects_forged_tokens": "tests/checks/test_jwt.py",
    "assert_every_operation_requires_auth": "tests/checks/test_openapi_sweep.py",
    "assert_dns_records": "tests/checks/test_dns.py",
    "assert_no_dangling_cnames": "tests/checks/test_dns.py",
    "assert_dnssec_signed": "tests/checks/test_dns.py",
    "assert_mysql_offers_tls": "tests/checks/test_network.py",
    "assert_ports_closed": "tests/checks/test_network.py",
    "assert_postgres_requires_tls": "tests/checks/test_network.py",
    "assert_redis_requires_auth": "tests/checks/test_network.py",
    "assert_rate_limited": "tests/checks/test_ratelimit.py",
    "assert_latency_budget": "tests/checks/test_perf.py",
    "assert_compressed": "tests/checks/test_perf.py",
    "assert_static_cached": "tests/checks/test_perf.py",
}


def test_every_public_helper_is_covered() -> None:
    public = {name for name in dir(assertions) if name.startswith("assert_")}
    assert public == {case.helper.__name__ for case in CASES} | set(TESTED_WITH_THEIR_FAMILY)
    # ...and the family test file named really calls it.
    root = Path(__file__).resolve().parents[1]
    for name, where in TESTED_WITH_THEIR_FAMILY.items():
        assert name in (root / where.split("::")[0]).read_text(encoding="utf-8"), (name, where)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_fails_on_the_defect_with_evidence_and_fix(
        case: Case, module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    served = module_webapp(*case.defects)
    message = failure_of(lambda: case(target_for(served)))
    method, _, path = case.request.partition(" ")
    assert f"[{case.check}]" in message
    assert f"\n> {method} {served.url}{path}\n" in message, message
    assert f"\n< {case.status} " in message, message
    assert f"Fix: {get_check(case.check).remediation}" in message


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.helper.__name__ + "-" + "+".join(case.args))
def test_quiet_on_the_good_target(
        case: Case, good_app: Served, target_for: Callable[..., Target]) -> None:
    try:
        case(target_for(good_app))
    except pytest.skip.Exception as skip:  # a skip would hide a helper that judges nothing
        pytest.fail(f"skipped instead of passing: {skip}")


def test_failure_is_an_assertion_error_carrying_its_evidence(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    served = module_webapp("open_api")
    with pytest.raises(AssertionError) as info:
        assert_requires_auth(target_for(served), "/api/agents")
    failure = info.value
    assert isinstance(failure, CheckFailure)
    assert failure.check_id == "auth.required"
    assert failure.remediation == get_check("auth.required").remediation
    assert [(ex.method, ex.url, ex.status) for ex in failure.exchanges] == [
        ("GET", f"{served.url}/api/agents", 200)]


def test_token_echoed_by_the_target_is_masked(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A debug page that prints the request's Authorization header: the value is masked
    where it is sent (by header name) and where it comes back (by value)."""
    served = module_webapp("debug_page")
    message = failure_of(lambda: assert_malformed_json_rejected(target_for(served), "POST /api/chat"))
    assert "\n> Authorization: Bearer ****\n" in message
    assert "\n< Authorization: Bearer ****\n" in message


def test_leaked_credential_is_masked_in_the_message(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    served = module_webapp("secret_leak")
    message = failure_of(lambda: assert_no_secrets_in_responses(target_for(served), "/api/health"))
    assert "database URL with password" in message
    assert "hunter2hunter2" not in message


def test_evidence_shared_by_several_checks_is_shown_once(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    served = module_webapp("no_hsts", "no_csp", "cors_reflect")
    target = target_for(served)
    headers = failure_of(lambda: assert_security_headers(target))
    assert "[headers.hsts]" in headers and "[headers.csp]" in headers
    assert headers.count(f"> GET {served.url}/\n") == 1
    cors = failure_of(lambda: assert_cors_rejects_unknown_origin(target, "/api/agents"))
    assert "[cors.unknown_origin_rejected]" in cors
    assert "[cors.no_wildcard_with_credentials]" in cors
    assert cors.count(f"> GET {served.url}/api/agents\n") == 1
    assert cors.count(f"Fix: {get_check('cors.no_wildcard_with_credentials').remediation}") == 1


def test_security_headers_judges_only_the_checks_asked_for(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    target = target_for(module_webapp("no_csp"))
    assert_security_headers(target, "/", checks=("hsts", "content_type_options"))
    assert_security_headers(target, "/", checks="hsts")
    assert "[headers.csp]" in failure_of(lambda: assert_security_headers(target, checks="csp"))


def test_admin_surfaces_honour_allow_from_the_call_and_from_config(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    served = module_webapp("metrics_public", "swagger_public")
    assert_no_admin_surfaces(target_for(served), allow=["/metrics", "/docs"])
    configured = target_for(served, exposure={"allow": ["/metrics"]})
    message = failure_of(lambda: assert_no_admin_surfaces(configured))
    assert "/docs" in message and "/metrics (" not in message
    assert_no_admin_surfaces(configured, allow=["/docs"])


def test_not_served_is_soft_404_aware(
        module_webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    target = target_for(module_webapp("spa"))
    assert_not_served(target)
    assert_not_served(target, "/.env", "/backup.sql", "/some/extra/path")


# -- nothing to judge: the test is skipped with the reason ---------------------------------
def test_skip_when_no_cookie_is_set(good_app: Served, target_for: Callable[..., Target]) -> None:
    with pytest.raises(pytest.skip.Exception, match="no Set-Cookie"):
        assert_cookie_flags(target_for(good_app), "/api/health")


def test_skip_when_the_endpoint_refuses_before_parsing(good_app: Served) -> None:
    with Target.from_url(good_app.url) as anonymous, \
            pytest.raises(pytest.skip.Exception, match=r"auth\.token_env"):
        assert_malformed_json_rejected(anonymous, "POST /api/chat")


def test_skip_when_metrics_are_protected_and_no_token_is_configured(good_app: Served) -> None:
    with Target.from_url(good_app.url) as anonymous, \
            pytest.raises(pytest.skip.Exception, match=r"metrics\.token_env"):
        assert_prometheus_metrics(anonymous, "/metrics")


def test_target_down_cannot_be_judged(target_for: Callable[..., Target]) -> None:
    """No answer is neither a pass nor a failure: CannotJudge, which is no AssertionError."""
    target = target_for(f"http://127.0.0.1:{closed_port()}", retries=0)
    with pytest.raises(CannotJudge, match="connection refused") as info:
        assert_healthy(target, "/api/health")
    assert not isinstance(info.value, AssertionError)
