"""csrf.*: each check fails on a real Flask target with the defect and passes on one without
it; the cross-site write goes out only when the run may write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import pytest

from pytest_prodready.checking import run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import ConfigError
from pytest_prodready.target import Target
from tests.targets.tenantapps import ALICE_COOKIE, Log, csrf_app, oauth_app, serve

SETTINGS = "POST /api/settings"
COOKIE_KEY = "identities.alice.cookie_env"


def values(url: str, **csrf: Any) -> dict[str, Any]:
    return {**DEFAULTS, "base_url": url,
            "identities": {"alice": {"cookie_env": "ALICE_COOKIE", "tenant": "acme"}},
            "csrf": {"endpoints": [SETTINGS], "identity": "alice", **csrf}}


@pytest.fixture(scope="module")
def csrf_targets() -> Iterator[dict[bool, tuple[str, Log]]]:
    with ExitStack() as stack:
        served = {}
        for protected in (True, False):
            log = Log()
            served[protected] = (stack.enter_context(serve(csrf_app(protected, log))), log)
        yield served


@pytest.fixture(scope="module")
def oauth_targets() -> Iterator[dict[tuple[bool, bool], str]]:
    """(checks_state, lenient_code) -> URL."""
    with ExitStack() as stack:
        yield {(state, lenient): stack.enter_context(serve(oauth_app(state, lenient)))
               for state in (True, False) for lenient in (True, False)}


@pytest.fixture
def target() -> Iterator[Callable[..., Target]]:
    made: list[Target] = []

    def factory(url: str, *, active: bool = False, cookie: str = ALICE_COOKIE, **csrf: Any) -> Target:
        settings = Settings(values=values(url, **csrf), secrets={COOKIE_KEY: cookie}, sources={})
        made.append(Target(replace(settings, active=active)))
        return made[-1]

    yield factory
    for t in made:
        t.close()


# -- csrf.cross_site_post_rejected ------------------------------------------------------------
def test_cross_site_post_fails_without_csrf_protection(
        csrf_targets: dict[bool, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, log = csrf_targets[False]
    before = len(log.methods("/api/settings"))
    result = run_check("csrf.cross_site_post_rejected", target(url, safe_to_call=[SETTINGS]), SETTINGS)
    assert result.outcome == "failed", result.message
    assert result.severity == "high"
    assert result.message == (f"{SETTINGS} accepted a cross-site request (Origin: "
                              "https://csrf-probe.prodready.invalid, no CSRF token) with alice's "
                              "session cookie (200): any page she visits can do this")
    assert ALICE_COOKIE.partition("=")[2] not in result.detail
    assert "Cookie: ****" in result.detail
    # Sent once, with her cookie and the foreign Origin.
    sent = [h for m, p, h in log.seen[before:] if p == "/api/settings"]
    assert len(sent) == 1
    assert sent[0]["Cookie"] == ALICE_COOKIE and sent[0]["Origin"].endswith("prodready.invalid")


def test_cross_site_post_passes_when_refused(
        csrf_targets: dict[bool, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, _ = csrf_targets[True]
    result = run_check("csrf.cross_site_post_rejected", target(url, safe_to_call=[SETTINGS]), SETTINGS)
    assert result.outcome == "passed", result.detail
    assert result.message == (f"{SETTINGS} refused a cross-site request with alice's cookie and "
                              "no token (403)")


def test_cross_site_post_is_not_sent_in_a_passive_run_unless_marked_safe(
        csrf_targets: dict[bool, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, log = csrf_targets[False]
    before = len(log.seen)
    result = run_check("csrf.cross_site_post_rejected", target(url), SETTINGS)
    assert result.outcome == "skipped"
    assert "run with --prodready-active, or list it in csrf.safe_to_call" in result.message
    assert len(log.seen) == before  # nothing reached the target


def test_cross_site_post_is_sent_in_an_active_run(
        csrf_targets: dict[bool, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, _ = csrf_targets[False]
    result = run_check("csrf.cross_site_post_rejected", target(url, active=True), SETTINGS)
    assert result.outcome == "failed"


def test_cross_site_post_with_a_dead_cookie_cannot_be_judged(
        csrf_targets: dict[bool, tuple[str, Log]], target: Callable[..., Target]) -> None:
    url, _ = csrf_targets[True]
    t = target(url, cookie="sid=sess-expired-0000000000", safe_to_call=[SETTINGS])
    result = run_check("csrf.cross_site_post_rejected", t, SETTINGS)
    assert result.outcome == "error"
    assert "refused alice's session cookie itself (401): is it still valid?" in result.message


# -- csrf.oauth_state_validated ---------------------------------------------------------------
CALLBACK = "/oauth/callback"


@pytest.mark.parametrize("lenient", [True, False], ids=["any-code", "strict-code"])
def test_oauth_state_passes_when_the_callback_checks_state(
        oauth_targets: dict[tuple[bool, bool], str], target: Callable[..., Target],
        lenient: bool) -> None:
    t = target(oauth_targets[(True, lenient)], oauth_start="/login", oauth_callback=CALLBACK)
    result = run_check("csrf.oauth_state_validated", t)
    assert result.outcome == "passed", result.detail
    control = 302 if lenient else 400
    assert result.message == (f"{CALLBACK} refused the forged callbacks (a foreign state: 400, "
                              f"no state: 400) unlike the one with the state it issued ({control})")


def test_oauth_state_fails_when_ignored_and_any_code_logs_in(
        oauth_targets: dict[tuple[bool, bool], str], target: Callable[..., Target]) -> None:
    t = target(oauth_targets[(False, True)], oauth_start="/login", oauth_callback=CALLBACK)
    result = run_check("csrf.oauth_state_validated", t)
    assert result.outcome == "failed", result.message
    assert result.message == (f"the OAuth callback {CALLBACK} with a foreign state accepted "
                              "(302 to /dashboard); with no state accepted (302 to /dashboard)")


def test_oauth_state_fails_when_ignored_even_though_the_code_is_refused(
        oauth_targets: dict[tuple[bool, bool], str], target: Callable[..., Target]) -> None:
    """Every forged call is refused for its bad code, but exactly like the right state's call:
    the state was never looked at. A bare status check would pass this target."""
    t = target(oauth_targets[(False, False)], oauth_start="/login", oauth_callback=CALLBACK)
    result = run_check("csrf.oauth_state_validated", t)
    assert result.outcome == "failed", result.message
    assert "with a foreign state answered exactly like the callback with the right state (400): " \
           "the state makes no difference" in result.message


def test_oauth_state_without_a_start_judges_by_the_answer(
        oauth_targets: dict[tuple[bool, bool], str], target: Callable[..., Target]) -> None:
    bad = run_check("csrf.oauth_state_validated", target(oauth_targets[(False, True)],
                                                         oauth_callback=CALLBACK))
    assert bad.outcome == "failed" and "accepted (302 to /dashboard)" in bad.message
    good = run_check("csrf.oauth_state_validated", target(oauth_targets[(True, False)],
                                                          oauth_callback=CALLBACK))
    assert good.outcome == "passed", good.detail
    assert good.message.endswith("set csrf.oauth_start to compare them with a real flow")


def test_oauth_session_cookie_is_masked(oauth_targets: dict[tuple[bool, bool], str],
                                        target: Callable[..., Target]) -> None:
    t = target(oauth_targets[(False, True)], oauth_start="/login", oauth_callback=CALLBACK)
    result = run_check("csrf.oauth_state_validated", t)
    start = result.exchanges[0]
    cookie = start.header_all("Set-Cookie")
    assert cookie and "session=****" in result.detail
    assert start.masker.text(cookie[0]).startswith("session=****")


# -- config -----------------------------------------------------------------------------------
def test_config_errors_name_the_key() -> None:
    from pytest_prodready.checks.csrf import FAMILY

    settings = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9",
                                "identities": {"bob": {"token_env": "BOB_TOKEN"}},
                                "csrf": {"endpoints": [SETTINGS], "identity": "bob",
                                         "safe_to_call": ["POST /api/other"]}},
                        secrets={}, sources={})
    with pytest.raises(ConfigError) as info:
        FAMILY.validate(settings)
    text = str(info.value)
    assert "identity 'bob' has no cookie_env" in text
    assert "csrf.safe_to_call" in text and "POST /api/other is not in csrf.endpoints" in text


# -- the QA helpers ---------------------------------------------------------------------------
def test_helpers(csrf_targets: dict[bool, tuple[str, Log]],
                 oauth_targets: dict[tuple[bool, bool], str], target: Callable[..., Target]) -> None:
    from pytest_prodready.assertions import (
        assert_cross_site_write_refused,
        assert_oauth_state_validated,
    )

    assert_cross_site_write_refused(target(csrf_targets[True][0]), SETTINGS, "alice", safe_to_call=True)
    with pytest.raises(AssertionError, match="accepted a cross-site request"):
        assert_cross_site_write_refused(target(csrf_targets[False][0]), SETTINGS, "alice",
                                        safe_to_call=True)
    assert_oauth_state_validated(target(oauth_targets[(True, False)]), CALLBACK, start="/login")
    with pytest.raises(AssertionError, match="the state makes no difference"):
        assert_oauth_state_validated(target(oauth_targets[(False, False)]), CALLBACK, start="/login")


# -- through the plugin -----------------------------------------------------------------------
def test_a_plugin_run_reports_the_cross_site_write_with_the_cookie_masked(
        csrf_targets: dict[bool, tuple[str, Log]], pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`pytest --prodready` with csrf.safe_to_call: the write is prefetched once, the failure
    and the reports never show alice's cookie; without safe_to_call nothing is sent."""
    url, log = csrf_targets[False]
    monkeypatch.setenv("ALICE_COOKIE", ALICE_COOKIE)
    config = f"""
base_url = "{url}"
[identities.alice]
cookie_env = "ALICE_COOKIE"
[csrf]
endpoints = ["{SETTINGS}"]
identity = "alice"
"""
    pytester.makefile(".toml", prodready=config + f'safe_to_call = ["{SETTINGS}"]\n')
    before = len(log.methods("/api/settings"))
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "csrf",
                                "-rA", "--junitxml=junit.xml", "--prodready-report", "r.json")
    assert log.methods("/api/settings")[before:] == ["POST"]
    report = json.loads((pytester.path / "r.json").read_text())
    assert {c["id"]: c["outcome"] for c in report["checks"]}["csrf.cross_site_post_rejected"] == "failed"
    texts = ["\n".join(result.outlines + result.errlines), (pytester.path / "junit.xml").read_text(),
             json.dumps(report)]
    assert "Cookie: ****" in texts[0]
    assert all(ALICE_COOKIE.partition("=")[2] not in text for text in texts)

    pytester.makefile(".toml", prodready=config)
    before = len(log.seen)
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "csrf",
                                "-rA", "--prodready-report", "r.json")
    assert all(p != "/api/settings" for _, p, _ in log.seen[before:])
    report = json.loads((pytester.path / "r.json").read_text())
    assert {c["id"]: c["outcome"] for c in report["checks"]}["csrf.cross_site_post_rejected"] == "skipped"
