"""exposure.default_credentials against faithful Flask reproductions of admin products'
login APIs (none of them installs from Debian here): Grafana 10/11 (tests/targets/grafana.py)
and RabbitMQ management 3.13, MinIO console (RELEASE.2024), Tomcat 9/10 manager, Jenkins
2.x, ActiveMQ classic 5.18 and SonarQube 10.4 (tests/targets/admin_products.py, which says what each
reproduces). For each product: the default login accepted fails, a changed password passes,
with exactly one attempt per run; nothing is tried where the product is not recognised or
when a lockout policy is configured; a site answering 200 to everything is judged by the
success marker, not the status, and is flagged for no product."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.credentials import PRODUCTS
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
from tests.targets.admin_products import serve_product
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
                                  'success marker in the answer: {"message": "Logged in"}): anyone '
                                  "can administer it")
        assert "grafana_session=****" in result.detail  # the real session it opened is masked
        assert run(probe).outcome == "failed"  # judged again from the one attempt
        assert grafana.attempts == [{"user": "admin", "password": "admin"}]


def test_changed_password_passes() -> None:
    with serve_grafana("a-real-password") as grafana:
        result = run(target(grafana.url))
        assert result.outcome == "passed", result.detail
        assert result.message == ("Grafana at /login did not accept the default login admin/admin: "
                                  "it answered 401 without Grafana's success marker "
                                  '({"message": "Logged in"})')
        assert len(grafana.attempts) == 1


def test_under_a_sub_path() -> None:
    with serve_grafana("admin", prefix="/grafana") as grafana:
        probe = target(grafana.url, default_credentials={"paths": ["/grafana"]})
        result = run(probe, "grafana@/grafana")
        assert result.outcome == "failed"
        assert result.message.startswith("Grafana at /grafana/login accepted the default login")


# product key, default login, the secret it hands out (masked in the evidence), and the
# success marker named in the verdict
DEFAULTS_OF = {
    "rabbitmq": ("guest", "guest", None),
    "minio": ("minioadmin", "minioadmin", "token=****"),
    "tomcat": ("tomcat", "tomcat", None),
    "jenkins": ("admin", "admin", "JSESSIONID."),
    "activemq": ("admin", "admin", None),
    "sonarqube": ("admin", "admin", "JWT-SESSION=****"),
}


@pytest.mark.parametrize("key", sorted(DEFAULTS_OF))
def test_each_product_with_its_default_login_fails(key: str) -> None:
    user, password, secret = DEFAULTS_OF[key]
    product = PRODUCTS[key]
    with serve_product(key, password) as served:
        probe = target(served.url)
        result = run(probe, f"{key}@/")
        assert result.outcome == "failed", result.message
        assert result.message.startswith(f"{product.name} at {product.recognise_path} accepted the "
                                         f"default login {user}/{password} ")
        assert product.marker in result.message
        assert run(probe, f"{key}@/").outcome == "failed"  # judged again from the one attempt
        assert served.attempts == [(user, password)]
        if key in ("rabbitmq", "tomcat", "activemq"):  # Basic auth: the header is masked
            assert "> Authorization: Basic ****" in result.detail
        if secret:
            assert secret in result.detail
        if key == "jenkins":  # the session Jenkins opened is masked, its name kept
            assert "JSESSIONID." in result.detail and "=node0" not in result.detail
        if key == "minio":
            assert [line for line in result.detail.splitlines() if "token=" in line
                    and "token=****" not in line] == []


@pytest.mark.parametrize("key", sorted(DEFAULTS_OF))
def test_each_product_with_a_changed_password_passes(key: str) -> None:
    user, password, _ = DEFAULTS_OF[key]
    product = PRODUCTS[key]
    with serve_product(key, "Changed-8f3a") as served:
        result = run(target(served.url), f"{key}@/")
        assert result.outcome == "passed", result.detail
        assert result.message.startswith(f"{product.name} at {product.recognise_path} did not accept "
                                         f"the default login {user}/{password}: it answered ")
        assert served.attempts == [(user, password)]


def test_rabbitmq_guest_kept_but_loopback_only_passes() -> None:
    """RabbitMQ's loopback_users (guest, by default): guest/guest from another host is 401."""
    with serve_product("rabbitmq", "guest", remote=True) as served:
        result = run(target(served.url), "rabbitmq@/")
        assert result.outcome == "passed"
        assert "it answered 401 without RabbitMQ management's success marker" in result.message


def test_tomcat_user_without_manager_role_passes() -> None:
    """tomcat/tomcat valid but without manager-gui is Tomcat's 403 Access Denied, not the manager."""
    with serve_product("tomcat", "tomcat", roles=("tomcat",)) as served:
        result = run(target(served.url), "tomcat@/")
        assert result.outcome == "passed"
        assert "it answered 403 without" in result.message


def test_old_jenkins_is_tried_at_acegi() -> None:
    with serve_product("jenkins", "admin", version="2.222.4") as served:
        result = run(target(served.url), "jenkins@/")
        assert result.outcome == "failed"
        assert "/j_acegi_security_check\n" in result.detail and "j_spring" not in result.detail
        assert served.attempts == [("admin", "admin")]


def test_not_recognised_is_skipped_and_nothing_is_tried() -> None:
    with serve() as webapp:
        result = run(target(webapp.url))
        assert result.outcome == "skipped"
        assert result.message == "no Grafana at /login (404): nothing to try"
        for key in DEFAULTS_OF:
            assert run(target(webapp.url), f"{key}@/").outcome == "skipped"
        assert {s.method for s in webapp.log} == {"GET"}


def test_a_product_is_not_mistaken_for_another() -> None:
    """Each reproduction is recognised as itself only: nothing is tried at the wrong product."""
    for key in DEFAULTS_OF:
        with serve_product(key, "Changed-8f3a") as served:
            outcomes = {other: run(target(served.url), f"{other}@/").outcome for other in PRODUCTS}
            assert outcomes == {other: "passed" if other == key else "skipped" for other in PRODUCTS}
            assert len(served.attempts) == 1


def test_200_to_everything_is_not_a_login() -> None:
    with serve_yes_to_everything() as url:
        result = run(target(url))
        assert result.outcome == "passed"
        assert "it answered 200 without Grafana's success marker" in result.message
        assert {k: run(target(url), f"{k}@/").outcome for k in DEFAULTS_OF} == dict.fromkeys(
            DEFAULTS_OF, "skipped")


@pytest.mark.parametrize("key", ["grafana", *sorted(DEFAULTS_OF)])
def test_lockout_configured_sends_nothing(key: str) -> None:
    password = "admin" if key == "grafana" else DEFAULTS_OF[key][1]
    with (serve_grafana("admin") if key == "grafana" else serve_product(key, password)) as served:
        result = run(target(served.url, default_credentials={"lockout": True}), f"{key}@/")
        assert result.outcome == "skipped"
        assert "a failed login could lock the account" in result.message
        assert served.attempts == [] and result.exchanges == []
