"""exposure.default_credentials against a faithful Flask reproduction of Grafana's login
API (tests/targets/grafana.py: Grafana does not install from Debian here): admin/admin
accepted fails, a changed password passes, one attempt per run, nothing tried where Grafana
is not recognised or when a lockout policy is configured, and a site answering 200 to
everything is judged by the success marker, not the status."""

from __future__ import annotations

from typing import Any

from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
from tests.targets.grafana import serve_grafana, serve_yes_to_everything
from tests.targets.webapp import serve

CHECK = "exposure.default_credentials"


def target(url: str, **values: Any) -> Target:
    return Target(Settings(values={**DEFAULTS, "base_url": url, **values}, secrets={}, sources={}))


def run(probe: Target, subject: str = "grafana@/") -> Result:
    return run_check(CHECK, probe, subject)


def test_default_admin_password_fails_with_one_attempt() -> None:
    with serve_grafana("admin") as grafana:
        probe = target(grafana.url)
        result = run(probe)
        assert result.outcome == "failed"
        assert result.message == ("Grafana at /login accepted the default login admin/admin (200, its "
                                  "success marker in the answer): anyone can administer it")
        assert "grafana_session=****" in result.detail  # the real session it opened is masked
        assert run(probe).outcome == "failed"  # judged again from the one attempt
        assert grafana.attempts == [{"user": "admin", "password": "admin"}]


def test_changed_password_passes() -> None:
    with serve_grafana("a-real-password") as grafana:
        result = run(target(grafana.url))
        assert result.outcome == "passed", result.detail
        assert result.message == ("Grafana at /login did not accept the default login admin/admin: "
                                  "it answered 401 without Grafana's success marker")
        assert len(grafana.attempts) == 1


def test_under_a_sub_path() -> None:
    with serve_grafana("admin", prefix="/grafana") as grafana:
        probe = target(grafana.url, default_credentials={"paths": ["/grafana"]})
        result = run(probe, "grafana@/grafana")
        assert result.outcome == "failed"
        assert result.message.startswith("Grafana at /grafana/login accepted the default login")


def test_not_recognised_is_skipped_and_nothing_is_tried() -> None:
    with serve() as webapp:
        result = run(target(webapp.url))
        assert result.outcome == "skipped"
        assert result.message == "no Grafana at /login (404): nothing to try"
        assert [s.method for s in webapp.log if s.path == "/login"] == ["GET"]


def test_200_to_everything_is_not_a_login() -> None:
    with serve_yes_to_everything() as url:
        result = run(target(url))
        assert result.outcome == "passed"
        assert "it answered 200 without Grafana's success marker" in result.message


def test_lockout_configured_sends_nothing() -> None:
    with serve_grafana("admin") as grafana:
        result = run(target(grafana.url, default_credentials={"lockout": True}))
        assert result.outcome == "skipped"
        assert "a failed login could lock the account" in result.message
        assert grafana.attempts == [] and result.exchanges == []
