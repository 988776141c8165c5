"""The launch checklist as tests: one line per box, checked against the live service.

Copy this file and `prodready.toml` next to it into your test folder, export the token the
config names, and run `pytest --prodready`. A failure shows the request sent, the response
seen (secrets masked) and the fix.
"""

from __future__ import annotations

import pytest

from pytest_prodready.assertions import (
    assert_cors_rejects_unknown_origin,
    assert_healthy,
    assert_malformed_json_rejected,
    assert_not_served,
    assert_requires_auth,
    assert_security_headers,
)
from pytest_prodready.target import Target


@pytest.mark.prodready(category="cors", severity="critical")
def test_cors_rejects_unknown_origin(prodready_target: Target) -> None:
    assert_cors_rejects_unknown_origin(prodready_target, "/api/agents")


@pytest.mark.prodready(category="auth", severity="critical")
def test_agents_refuse_anonymous_callers(prodready_target: Target) -> None:
    assert_requires_auth(prodready_target, "GET /api/agents")


@pytest.mark.prodready(category="exposure", severity="critical")
def test_env_file_not_served(prodready_target: Target) -> None:
    assert_not_served(prodready_target, "/.env")


@pytest.mark.prodready(category="health", severity="critical")
def test_health_endpoint_is_healthy(prodready_target: Target) -> None:
    assert_healthy(prodready_target, "/api/health")


@pytest.mark.prodready(category="headers", severity="high")
def test_security_headers_present(prodready_target: Target) -> None:
    assert_security_headers(prodready_target, "/")


@pytest.mark.prodready(category="errors", severity="high")
def test_malformed_json_gets_4xx_without_stack_trace(prodready_target: Target) -> None:
    assert_malformed_json_rejected(prodready_target, "POST /api/chat")
