"""authz.*: each check fails on a real multi-tenant target with the defect and passes on one
without it; a target that answers 200 with an error body is not an IDOR."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from flask import Flask, Response, request

from pytest_prodready.checking import run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import ConfigError
from pytest_prodready.identities import identities, identity
from pytest_prodready.similarity import likeness
from pytest_prodready.target import Probe, Target
from tests.targets.tenantapps import (
    ALICE_COOKIE,
    ALICE_TOKEN,
    BOB_TOKEN,
    CONVERSATIONS,
    MODES,
    PASSWORDS,
    Log,
    serve,
    tenant_app,
)
from tests.targets.webapp import serve_app

OWNED = "/api/conversations/123"
LIST = "/api/conversations"
SECRETS = {"identities.alice.token_env": ALICE_TOKEN, "identities.bob.token_env": BOB_TOKEN}


def values(url: str, **extra: Any) -> dict[str, Any]:
    return {
        **DEFAULTS, "base_url": url,
        "identities": {"alice": {"token_env": "ALICE_TOKEN", "tenant": "acme"},
                       "bob": {"token_env": "BOB_TOKEN", "tenant": "globex"}},
        "ownership": [{"path": OWNED, "owner": "alice"}],
        "authz": {"list_paths": [LIST]},
        **extra,
    }


@pytest.fixture(scope="module")
def tenants() -> Iterator[dict[str, tuple[str, Log]]]:
    """One real Flask service per mode, with the log of what each received."""
    with ExitStack() as stack:
        served = {}
        for mode in MODES:
            log = Log()
            served[mode] = (stack.enter_context(serve(tenant_app(mode, log))), log)
        yield served


@pytest.fixture
def target() -> Iterator[Callable[..., Target]]:
    made: list[Target] = []

    def factory(url: str, secrets: dict[str, str] | None = None, **extra: Any) -> Target:
        made.append(Target(Settings(values=values(url, **extra), secrets=secrets or SECRETS,
                                    sources={})))
        return made[-1]

    yield factory
    for t in made:
        t.close()


# -- the pieces -------------------------------------------------------------------------------
def test_identities_name_their_credentials_by_config_key() -> None:
    settings = Settings(values=values("http://127.0.0.1:1"), secrets=SECRETS, sources={})
    found = identities(settings)
    assert list(found) == ["alice", "bob"]
    assert found["alice"].credential == "identities.alice.token_env"
    assert found["bob"].tenant == "globex" and found["bob"].uid == "bob"
    with pytest.raises(KeyError, match=r"no identity 'mallory'.*alice, bob"):
        identity(settings, "mallory")


def test_the_client_sends_an_identity_token_as_bearer_and_a_cookie_as_cookie(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, log = tenants["correct"]
    t = target(url, secrets={**SECRETS, "identities.alice.cookie_env": ALICE_COOKIE})
    by_token = t.fetch(Probe.get(OWNED, credential="identities.alice.token_env"))
    by_cookie = t.fetch(Probe.get(OWNED + "?c", credential="identities.alice.cookie_env"))
    assert by_token.status == by_cookie.status == 200
    seen = [h for _, p, h in log.seen if p == OWNED]
    assert any(h.get("Authorization") == f"Bearer {ALICE_TOKEN}" for h in seen)
    assert any(h.get("Cookie") == ALICE_COOKIE and "Authorization" not in h for h in seen)
    assert dict(by_token.request_headers)["Authorization"] == "Bearer ****"
    assert ALICE_COOKIE.partition("=")[2] not in by_cookie.render()


def test_likeness_tells_the_owners_data_from_an_error_body() -> None:
    owner = json.dumps(CONVERSATIONS["123"])
    reordered = json.dumps(dict(reversed(list(CONVERSATIONS["123"].items()))))
    assert likeness(owner, reordered).same_data
    assert not likeness(owner, '{"error": "not found"}').same_data
    assert not likeness(owner, json.dumps(CONVERSATIONS["456"])).same_data
    assert likeness("<h1>Q3 plan</h1>", "<h1>Q3 plan</h1>").same_data
    # The same page with an error phrase the owner's lacks is a refusal page.
    assert not likeness("<p>Your conversation</p>", "<p>Your conversation</p> Forbidden").same_data


# -- authz.cross_tenant_denied ----------------------------------------------------------------
def test_cross_tenant_fails_on_an_idor(tenants: dict[str, tuple[str, Log]],
                                       target: Callable[..., Target]) -> None:
    """bob reads alice's conversation by id: a critical finding, both exchanges shown."""
    result = run_check("authz.cross_tenant_denied", target(tenants["idor"][0]), OWNED)
    assert result.outcome == "failed", result.message
    assert result.severity == "critical"
    assert result.message == f"bob read alice's {OWNED} (200, 100% like the owner's body)"
    assert "Q3 acquisition plan" in result.detail and "Fix: Check on every read" in result.detail
    assert ALICE_TOKEN not in result.detail and BOB_TOKEN not in result.detail
    assert [ex.status for ex in result.exchanges] == [200, 200]


@pytest.mark.parametrize("mode", ["correct", "trusts_org"])
def test_cross_tenant_passes_when_others_are_refused(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target], mode: str) -> None:
    result = run_check("authz.cross_tenant_denied", target(tenants[mode][0]), OWNED)
    assert result.outcome == "passed", result.detail
    assert result.message == f"{OWNED} (alice's, 200): bob refused (404)"


def test_cross_tenant_200_with_an_error_body_is_not_an_idor(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    """The owner gets her data, bob gets 200 {"error": "not found"}: that is a refusal."""
    result = run_check("authz.cross_tenant_denied", target(tenants["soft_deny"][0]), OWNED)
    assert result.outcome == "passed", result.detail
    assert result.message == (f"{OWNED} (alice's, 200): bob 200 but not the owner's data "
                              "(0% like the owner's body, with error phrases ('not found'))")


def test_cross_tenant_cannot_judge_without_a_clean_owner_baseline(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    """200 with an error body for everyone, the owner included: nothing to compare."""
    result = run_check("authz.cross_tenant_denied", target(tenants["error_for_everyone"][0]), OWNED)
    assert result.outcome == "error"
    assert result.message == (f"cannot judge: alice's own read of {OWNED} answered 200 with an "
                              "error body ('not found'): without a clean 2xx baseline there is "
                              "nothing to compare; check alice's credential and the path")


def test_cross_tenant_with_one_identity_is_skipped_naming_what_to_add(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    t = target(tenants["idor"][0], identities={"alice": {"token_env": "ALICE_TOKEN"}})
    result = run_check("authz.cross_tenant_denied", t, OWNED)
    assert result.outcome == "skipped"
    assert "configure another identity in [identities]" in result.message


def test_cross_tenant_unconfigured_is_skipped_naming_the_keys() -> None:
    settings = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9"}, secrets={}, sources={})
    with Target(settings) as t:
        result = run_check("authz.cross_tenant_denied", t, OWNED)
    assert result.outcome == "skipped"
    assert result.message == "not configured: set identities, ownership"


# -- authz.header_spoofing_ignored ------------------------------------------------------------
@pytest.mark.parametrize("path", [OWNED, LIST])
def test_spoofing_fails_when_x_org_id_is_trusted(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target], path: str) -> None:
    """bob with X-Org-Id: acme reads alice's conversation and her tenant's list."""
    url, log = tenants["trusts_org"]
    result = run_check("authz.header_spoofing_ignored", target(url), path)
    assert result.outcome == "failed", result.message
    assert result.message.startswith(f"identity headers are trusted: bob with X-Org-Id: acme read "
                                      f"alice's {path} (200, 100% like the owner's body); without "
                                      "the header: ")
    # Only the header that the target trusts is blamed.
    assert "X-Tenant-Id" not in result.message and "X-User-Id" not in result.message
    spoofed = [h for _, p, h in log.seen if p == path and h.get("X-Org-Id") == "acme"]
    assert spoofed and all(h["Authorization"] == f"Bearer {BOB_TOKEN}" for h in spoofed)


@pytest.mark.parametrize("mode", ["correct", "soft_deny"])
@pytest.mark.parametrize("path", [OWNED, LIST])
def test_spoofing_passes_when_identity_headers_are_ignored(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target], mode: str,
        path: str) -> None:
    result = run_check("authz.header_spoofing_ignored", target(tenants[mode][0]), path)
    assert result.outcome == "passed", result.detail
    assert "spoofed read(s) changed nothing" in result.message
    assert "X-Org-Id: acme" in result.message


def test_an_idor_is_not_reported_as_spoofing(tenants: dict[str, tuple[str, Log]],
                                             target: Callable[..., Target]) -> None:
    """bob reads alice's conversation with or without headers: cross_tenant_denied's finding,
    not this check's (it cannot tell what the header does)."""
    result = run_check("authz.header_spoofing_ignored", target(tenants["idor"][0]), OWNED)
    assert result.outcome == "error", result.message
    assert "even without the header (an IDOR: see authz.cross_tenant_denied)" in result.message


def test_spoof_headers_are_configurable(tenants: dict[str, tuple[str, Log]],
                                        target: Callable[..., Target]) -> None:
    """With only X-User-Id configured, the X-Org-Id-trusting target is not probed with X-Org-Id."""
    url, _log = tenants["trusts_org"]
    t = target(url, authz={"list_paths": [LIST], "spoof_headers": ["X-User-Id"]})
    result = run_check("authz.header_spoofing_ignored", t, LIST)
    assert result.outcome == "passed", result.detail
    assert "X-User-Id: alice" in result.message and "X-Org-Id" not in result.message


# -- config -----------------------------------------------------------------------------------
def test_config_errors_name_the_key() -> None:
    from pytest_prodready.checks.authz import FAMILY

    bad = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9",
                           "identities": {"alice": {"tenant": "acme"}},
                           "ownership": [{"path": OWNED, "owner": "mallory"}]},
                   secrets={}, sources={})
    with pytest.raises(ConfigError) as info:
        FAMILY.validate(bad)
    text = str(info.value)
    assert "identities.alice" in text and "set token_env, cookie_env or a login table" in text
    assert "ownership[0].owner" in text and "no identity 'mallory'" in text


def test_the_config_file_accepts_identities_ownership_and_authz(
        tmp_path: Any) -> None:
    from pytest_prodready.config import Overrides, load_settings

    (tmp_path / "prodready.toml").write_text(f"""
base_url = "http://127.0.0.1:9"
[identities.alice]
token_env = "ALICE_TOKEN"
tenant = "acme"
[identities.bob]
token_env = "BOB_TOKEN"
[[ownership]]
path = "{OWNED}"
owner = "alice"
[authz]
list_paths = ["{LIST}"]
spoof_headers = ["X-Org-Id"]
""")
    settings = load_settings(tmp_path, Overrides(),
                             environ={"ALICE_TOKEN": ALICE_TOKEN, "BOB_TOKEN": BOB_TOKEN})
    assert settings.secret("identities.bob.token_env") == BOB_TOKEN
    assert settings.get("authz.spoof_headers") == ["X-Org-Id"]


# -- the canary -------------------------------------------------------------------------------
COOKIE_VALUE = ALICE_COOKIE.partition("=")[2]


def echo_idor() -> Flask:
    """An IDOR that also echoes the caller's credentials in a header and the body."""
    app = Flask("echo_idor")

    @app.get("/api/conversations/<cid>")
    def conversation(cid: str) -> Response:
        auth = request.headers.get("Authorization", "")
        cookie = request.headers.get("Cookie", "")
        if not auth and not cookie:
            return Response('{"error": "unauthorized"}', 401, mimetype="application/json")
        # The conversation's own data outweighs the echoed fields (two leaves of 24): the
        # answer is still "substantially like" the owner's.
        messages = [f"message {i} of the Q3 plan" for i in range(20)]
        body = {**CONVERSATIONS["123"], "messages": messages,
                "debug": {"auth": auth, "cookie": cookie}}
        return Response(json.dumps(body), 200, mimetype="application/json",
                        headers={"X-Echo-Auth": auth, "X-Echo-Cookie": cookie})

    return app


def test_canary_identity_tokens_and_cookies_never_appear_in_any_output(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_TOKEN", ALICE_TOKEN)
    monkeypatch.setenv("BOB_COOKIE", f"sid={COOKIE_VALUE}")
    with serve_app(echo_idor()) as url:
        pytester.makefile(".toml", prodready=f"""
base_url = "{url}"
[identities.alice]
token_env = "ALICE_TOKEN"
tenant = "acme"
[identities.bob]
cookie_env = "BOB_COOKIE"
tenant = "globex"
[[ownership]]
path = "{OWNED}"
owner = "alice"
""")
        result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "-vv", "--tb=long",
                                    "-l", "-rA", "--junitxml=junit.xml", "--prodready-only", "authz",
                                    "--prodready-report", "r.json", "--prodready-report", "r.md",
                                    "--prodready-report", "r.html")
    out = "\n".join(result.outlines + result.errlines)
    outputs = {"terminal": out}
    outputs |= {name: (pytester.path / name).read_text(encoding="utf-8")
                for name in ("junit.xml", "r.json", "r.md", "r.html")}
    report = json.loads(outputs["r.json"])
    outcomes = {c["id"]: c["outcome"] for c in report["checks"]}
    assert outcomes.get("authz.cross_tenant_denied") == "failed", outcomes
    assert "X-Echo-Auth: Bearer ****" in out  # the echoed credential is in the evidence, masked
    for name, text in outputs.items():
        for secret in (ALICE_TOKEN, COOKIE_VALUE):
            assert secret not in text, (name, secret)


# -- the QA helpers ---------------------------------------------------------------------------
def test_helpers_bob_cannot_read_alices_conversation(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    from pytest_prodready.assertions import assert_cannot_read, assert_identity_headers_ignored

    assert_cannot_read(target(tenants["correct"][0]), OWNED, owner="alice", reader="bob")
    with pytest.raises(AssertionError, match=r"bob read alice's /api/conversations/123"):
        assert_cannot_read(target(tenants["idor"][0]), OWNED, owner="alice", reader="bob")
    assert_identity_headers_ignored(target(tenants["correct"][0]), LIST, owner="alice", reader="bob")
    with pytest.raises(AssertionError, match=r"bob with X-Org-Id: acme read alice's"):
        assert_identity_headers_ignored(target(tenants["trusts_org"][0]), LIST, owner="alice",
                                        reader="bob", headers=["X-Org-Id"])


# -- identities with a login flow -------------------------------------------------------------
BOB_LOGIN = {"endpoint": "POST /api/login", "username_env": "BOB_USER",
             "password_env": "BOB_PASSWORD", "token_pointer": "/data/access_token"}
LOGIN_SECRETS = {"identities.alice.token_env": ALICE_TOKEN,
                 "identities.bob.login.username_env": "bob",
                 "identities.bob.login.password_env": PASSWORDS["bob"]}


def login_people(bob_login: dict[str, Any]) -> dict[str, Any]:
    return {"alice": {"token_env": "ALICE_TOKEN", "tenant": "acme"},
            "bob": {"tenant": "globex", "login": bob_login}}


@pytest.fixture(scope="module")
def expiring() -> Iterator[tuple[str, Log]]:
    """The correct service, whose issued tokens are refused after two requests."""
    log = Log()
    with serve(tenant_app("correct", log, token_uses=2)) as url:
        yield url, log


@pytest.mark.parametrize(("mode", "outcome"), [("idor", "failed"), ("correct", "passed")])
def test_a_logged_in_identity_reads_with_the_token_her_login_returned(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target], mode: str,
        outcome: str) -> None:
    url, log = tenants[mode]
    before = len(log.seen)
    t = target(url, secrets=LOGIN_SECRETS, identities=login_people(BOB_LOGIN))
    result = run_check("authz.cross_tenant_denied", t, OWNED)
    assert result.outcome == outcome, result.detail
    seen = log.seen[before:]
    assert [m for m, p, _ in seen if p == "/api/login"] == ["POST"]
    issued = [h["Authorization"] for _, p, h in seen if p == OWNED and "issued-" in
              h.get("Authorization", "")]
    assert len(issued) == 1
    token = issued[0].partition(" ")[2]
    shown = result.detail + json.dumps(result.evidence()) + result.message
    assert token not in shown and PASSWORDS["bob"] not in shown


def test_a_login_by_cookie_sends_the_cookie_it_set(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, log = tenants["correct"]
    before = len(log.seen)
    cookie_login = {**BOB_LOGIN, "form": True, "cookie": "sid"}
    del cookie_login["token_pointer"]
    t = target(url, secrets=LOGIN_SECRETS, identities=login_people(cookie_login))
    result = run_check("authz.cross_tenant_denied", t, OWNED)
    assert result.outcome == "passed", result.detail
    sent = [h for _, p, h in log.seen[before:] if p == OWNED and "Cookie" in h]
    assert len(sent) == 1 and sent[0]["Cookie"].startswith("sid=sess-")
    assert sent[0]["Cookie"].partition("=")[2] not in result.detail + json.dumps(result.evidence())


def test_a_401_logs_in_again_once(expiring: tuple[str, Log], target: Callable[..., Target]) -> None:
    """bob's tokens expire after two requests: his reads (plain and spoofed) need fresh logins, and
    every read is still judged (none is mistaken for a refusal)."""
    url, log = expiring
    t = target(url, secrets=LOGIN_SECRETS, identities=login_people(BOB_LOGIN))
    result = run_check("authz.header_spoofing_ignored", t, LIST)
    assert result.outcome == "passed", result.detail
    # Both directions: alice as bob and bob as alice, five headers each.
    assert result.message.startswith(f"{LIST}: 10 spoofed read(s) changed nothing")
    assert "refused (401)" not in result.message
    assert len([p for m, p, _ in log.seen if p == "/api/login"]) >= 3


def test_a_wrong_password_cannot_judge_and_names_the_key(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    t = target(tenants["idor"][0], identities=login_people(BOB_LOGIN),
               secrets={**LOGIN_SECRETS, "identities.bob.login.password_env": "wrong-password-123"})
    result = run_check("authz.cross_tenant_denied", t, OWNED)
    assert result.outcome == "error"
    assert result.message == ("cannot judge: bob's login (POST /api/login) answered 401: check "
                              "identities.bob.login.password_env and the endpoint")
    assert "wrong-password-123" not in result.detail + json.dumps(result.evidence())


def test_a_login_table_needs_a_token_pointer_or_a_cookie() -> None:
    from pytest_prodready.checks.authz import FAMILY

    bad = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9",
                           "identities": {"bob": {"login": {"endpoint": "POST /api/login",
                                                            "password_env": "P"}}}},
                   secrets={}, sources={})
    with pytest.raises(ConfigError, match=r"identities\.bob\.login.*token_pointer"):
        FAMILY.validate(bad)


def test_spoofing_with_only_tenant_headers_and_no_tenants_is_skipped(
        tenants: dict[str, tuple[str, Log]], target: Callable[..., Target]) -> None:
    t = target(tenants["trusts_org"][0], identities={"alice": {"token_env": "ALICE_TOKEN"},
                                                     "bob": {"token_env": "BOB_TOKEN"}},
               authz={"list_paths": [LIST], "spoof_headers": ["X-Org-Id"]})
    result = run_check("authz.header_spoofing_ignored", t, LIST)
    assert result.outcome == "skipped"
    assert "set identities.NAME.tenant" in result.message
