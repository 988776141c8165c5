"""ratelimit.enforced against real limiters on loopback: flask-limiter and nginx limit_req.

Each test gets its own limiter (a fresh window). A counting target (no limiter) proves the
request cap: exactly limit x 1.5 + 5 requests, never more; and a pytester run proves that
without --prodready-active the check sends nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.ratelimit_headers import read
from pytest_prodready.target import Target
from tests.targets.limiters import (
    ADMIN_TOKEN,
    LOCKOUT_PASSWORD,
    LOCKOUT_USER,
    LOGIN,
    NginxLimited,
    express_limited,
    flask_limited,
    lockout_target,
    nginx_limited,
)

RATE = {f"POST {LOGIN}": "5/minute"}


def enforced(target: Target, subject: str = f"POST {LOGIN}") -> Result:
    return run_check("ratelimit.enforced", target, subject)


def test_flask_limiter_at_the_configured_limit_passes(target_for: Callable[..., Target]) -> None:
    with flask_limited("right") as app:
        result = enforced(target_for(app.url, rate_limits=RATE))
        assert result.outcome == "passed", result.message
        assert "5 requests accepted, request 6 refused with 429" in result.message
        assert "Retry-After" in result.message and "X-RateLimit: quota 5" in result.message
        assert app.count() == 6


@pytest.mark.parametrize(("mode", "expected"), [
    ("off", "none was refused"),
    ("loose", "none was refused"),
    ("lying", "and counted down to 0 remaining by request 5, but refused nothing"),
    ("silent", "said neither Retry-After nor when the limit resets"),
])
def test_flask_limiter_off_loose_lying_or_silent_fails(target_for: Callable[..., Target], mode: str,
                                                       expected: str) -> None:
    with flask_limited(mode) as app:
        result = enforced(target_for(app.url, rate_limits=RATE))
        assert result.outcome == "failed", result.message
        assert expected in result.message
        # The cap: 5 x 1.5 + 5 = 12 requests at most, and exactly that when nothing refuses.
        assert app.count() == (6 if mode == "silent" else 12)


def test_the_current_draft_fields_are_read(target_for: Callable[..., Target]) -> None:
    with flask_limited("draft") as app:
        result = enforced(target_for(app.url, rate_limits=RATE))
        assert result.outcome == "passed", result.message
        assert "RateLimit-Policy 'login': quota 5 per 60s" in result.message


def test_within_the_slack_passes_and_says_so(target_for: Callable[..., Target]) -> None:
    with flask_limited("generous") as app:
        result = enforced(target_for(app.url, rate_limits=RATE))
        assert result.outcome == "passed", result.message
        assert "observed limit 7, more than the configured 5 but within the slack of 12" in result.message
        assert "advertised quota 7 differs from the configured 5" in result.message


def test_advertising_more_than_is_enforced_fails(target_for: Callable[..., Target]) -> None:
    with flask_limited("overstated") as app:
        result = enforced(target_for(app.url, rate_limits=RATE))
        assert result.outcome == "failed", result.message
        assert ("the first response advertised 9 more requests (X-RateLimit: quota 10, 9 remaining; "
                "Retry-After 60s), but 5 were accepted in all") in result.message
        assert "the refusal still advertised 5 requests remaining" in result.message


def test_an_exhausted_window_cannot_be_judged(target_for: Callable[..., Target]) -> None:
    with flask_limited("right") as app:
        target = target_for(app.url, rate_limits=RATE)
        assert enforced(target).outcome == "passed"
        again = enforced(target)
        assert again.outcome == "error", again.message
        assert "the first request to POST /api/auth/login was already refused" in again.message


def test_the_run_budget_is_respected(target_for: Callable[..., Target]) -> None:
    with flask_limited("off") as app:
        result = enforced(target_for(app.url, rate_limits=RATE, request_budget=10))
        assert result.outcome == "error"
        assert "takes up to 12 requests" in result.message and "10 left" in result.message
        assert app.count() == 0


# -- nginx limit_req ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxLimited]:
    with nginx_limited(tmp_path_factory.mktemp("nginx-limits")) as running:
        yield running


@pytest.mark.parametrize(("role", "outcome", "expected"), [
    ("right", "passed", "5 requests accepted, request 6 refused with 429 (Retry-After 60s)"),
    ("default", "failed", "answered 503 to request 6 after 5 accepted, not 429"),
    ("loose", "failed", "none was refused"),
])
def test_nginx_limit_req(nginx: NginxLimited, target_for: Callable[..., Target], role: str, outcome: str,
                         expected: str) -> None:
    result = enforced(target_for(nginx.url(role), rate_limits={"/limited": "5/minute"}),
                      "GET /limited")
    assert result.outcome == outcome, result.message
    assert expected in result.message
    assert nginx.count(role) <= 12


# -- never without --prodready-active ----------------------------------------------------------
def _config(url: str) -> str:
    return f'base_url = "{url}"\n\n[rate_limits]\n"POST {LOGIN}" = "5/minute"\n'


def test_without_the_active_flag_nothing_is_sent(pytester: pytest.Pytester) -> None:
    with flask_limited("off") as app:
        pytester.makefile(".toml", prodready=_config(app.url))
        result = pytester.runpytest("--prodready", "--prodready-only", "ratelimit", "-rs",
                                    "-p", "no:cacheprovider")
        result.assert_outcomes(skipped=2)  # ratelimit.login_lockout: not configured
        assert "needs --prodready-active" in result.stdout.str()
        assert app.count() == 0
        # The same run with the flag sends the burst, capped.
        active = pytester.runpytest("--prodready", "--prodready-active", "--prodready-only", "ratelimit",
                                    "-p", "no:cacheprovider")
        active.assert_outcomes(failed=1, skipped=1)
        assert app.count() == 12
        # A sensitive target refuses active checks unless forced.
        refused = pytester.runpytest("--prodready", "--prodready-active", "--prodready-only", "ratelimit",
                                     "--prodready-sensitive-url", "127\\.0\\.0\\.1", "-rs",
                                     "-p", "no:cacheprovider")
        refused.assert_outcomes(skipped=2)
        assert app.count() == 12
        forced = pytester.runpytest("--prodready", "--prodready-active", "--prodready-only", "ratelimit",
                                    "--prodready-sensitive-url", "127\\.0\\.0\\.1",
                                    "--prodready-force-active", "-p", "no:cacheprovider")
        forced.assert_outcomes(failed=1, skipped=1)
        assert app.count() == 24


# -- the header parser -------------------------------------------------------------------------
def test_every_generation_and_retry_after_precedence() -> None:
    now = 1_800_000_000.0
    ad = read([("X-RateLimit-Limit", "100"), ("X-RateLimit-Remaining", "0"),
               ("X-RateLimit-Reset", str(int(now) + 30)), ("Retry-After", "45")], now)
    assert (ad.limit, ad.remaining, ad.reset_s) == (100, 0, 45.0)  # Retry-After wins
    draft3 = read([("RateLimit-Limit", "10, 10;w=1, 1000;w=3600"), ("RateLimit-Remaining", "9"),
                   ("RateLimit-Reset", "1")], now)
    assert (draft3.limit, draft3.window_s, draft3.remaining, draft3.reset_s) == (10, 1.0, 9, 1.0)
    draft7 = read([("RateLimit", "limit=10, remaining=3, reset=30"), ("RateLimit-Policy", "10;w=60")], now)
    assert (draft7.limit, draft7.window_s, draft7.remaining, draft7.reset_s) == (10, 60.0, 3, 30.0)
    spaced = read([("RateLimit-Policy", '"login"; q=5; w=60; pk=:MTJjYTE3YjQ5YWYy:'),
                   ("RateLimit", '"login"; r=0; t=60')], now)
    assert (spaced.limit, spaced.window_s, spaced.remaining, spaced.problems) == (5, 60.0, 0, ())
    current = read([("RateLimit-Policy", '"burst";q=100;w=60, "daily";q=1000;w=86400'),
                    ("RateLimit", '"burst";r=50;t=30, "daily";r=999;t=5000')], now)
    assert (current.limit, current.window_s, current.remaining, current.reset_s) == (100, 60.0, 50, 30.0)
    millis = read([("X-RateLimit-Reset", str(int(now + 10) * 1000))], now)
    assert millis.reset_s == 10.0
    date = read([("Retry-After", "Fri, 15 Jan 2027 08:00:30 GMT")], 1_800_000_000.0)
    assert date.retry_after_s is not None and date.retry_after_s >= 0


def test_malformed_fields_are_ignored_and_named() -> None:
    ad = read([("RateLimit-Limit", "ten"), ("RateLimit-Policy", ";;;"), ("RateLimit", "limit=="),
               ("X-RateLimit-Remaining", "-1"), ("Retry-After", "Mon, 99 Foo 99999999999 GMT")], 0.0)
    assert ad.policies == () and ad.retry_after_s is None
    assert len(ad.problems) == 5, ad.problems
    assert not read([], 0.0).any


def test_result_evidence_is_bounded_to_what_was_sent(target_for: Callable[..., Target],
                                                     tmp_path: Path) -> None:
    with flask_limited("right") as app:
        result = enforced(target_for(app.url, rate_limits=RATE))
        assert len(result.exchanges) == 6
        assert all(ex.method == "POST" for ex in result.exchanges)
        assert [ex.status for ex in result.exchanges] == [401] * 5 + [429]
        burst = result.facts[0].to_dict()
        assert burst["kind"] == "ratelimit" and burst["statuses"] == [401] * 5 + [429]
        assert burst["sent"] == 6 and burst["cap"] == 12 and len(burst["advertised"]) == 6
        assert "401 x5, 429" in result.facts[0].render()


def test_assertion_helper(target_for: Callable[..., Target]) -> None:
    from pytest_prodready import assertions

    with flask_limited("right") as app:
        assertions.assert_rate_limited(target_for(app.url), "POST /api/auth/login", "5/minute")
    with flask_limited("off") as app, pytest.raises(AssertionError, match="none was refused"):
        assertions.assert_rate_limited(target_for(app.url), "POST /api/auth/login", "5/minute")


# -- express-rate-limit ------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "outcome", "fragment"), [
    ("draft-7", "passed", "advertised: RateLimit (draft 7): quota 5 per 60s, 4 remaining"),
    # express-rate-limit's draft-8 fields carry a partition key (pk=:<base64>:, a byte sequence).
    ("draft-8", "passed", "advertised: RateLimit-Policy 'login': quota 5 per 60s, 4 remaining"),
    ("legacy", "passed", "advertised: X-RateLimit: quota 5, 4 remaining"),
    ("loose", "failed", "none was refused"),
    ("off", "failed", "none was refused"),
])
def test_express_rate_limit(target_for: Callable[..., Target], mode: str, outcome: str,
                            fragment: str) -> None:
    with express_limited(mode) as url:
        result = enforced(target_for(url, rate_limits=RATE))
        assert result.outcome == outcome, result.message
        assert fragment in result.message
        if outcome == "passed":
            assert "5 requests accepted, request 6 refused with 429" in result.message


# -- ratelimit.login_lockout -------------------------------------------------------------------
def lockout_target_for(url: str, **lockout: object) -> Target:
    settings = Settings(
        values={**DEFAULTS, "base_url": url,
                "lockout": {"endpoint": "POST /api/auth/login", "username_env": "QA_USER",
                            "password_env": "QA_PASSWORD", **lockout},
                "auth": {"token_env": "ADMIN_TOKEN"}},
        secrets={"lockout.username_env": LOCKOUT_USER, "lockout.password_env": LOCKOUT_PASSWORD,
                 "auth.token_env": ADMIN_TOKEN},
        sources={})
    return Target(settings)


def lockout(target: Target) -> Result:
    with target:
        return run_check("ratelimit.login_lockout", target)


def test_lockout_that_locks_passes_and_restores_the_account() -> None:
    with lockout_target("locks", lock_s=1.0) as app:
        result = lockout(lockout_target_for(app.url, lock_s=1))
        assert result.outcome == "passed", result.message
        assert ("after 5 failed logins the correct password was refused (423, Retry-After 1s)"
                in result.message)
        assert "the account was restored (after waiting 1s" in result.message
        assert app.log == ["right"] + ["wrong"] * 5 + ["right", "right"]
        assert LOCKOUT_PASSWORD not in result.detail + str(result.evidence())
        # The session a successful login hands out is masked like the configured secrets.
        assert "session-ok" not in str(result.evidence())


@pytest.mark.parametrize(("mode", "fragment"), [
    ("never", "after 5 failed logins the correct password still logged in"),
    ("success_unlocks", "after 5 failed logins the correct password still logged in"),
])
def test_no_lockout_fails(mode: str, fragment: str) -> None:
    with lockout_target(mode) as app:
        result = lockout(lockout_target_for(app.url))
        assert result.outcome == "failed", result.message
        assert fragment in result.message
        assert len(app.log) == 7  # the control, 5 failures, the correct password
        assert "session-ok" not in result.detail


def test_a_long_lock_is_restored_through_the_unlock_endpoint_or_reported() -> None:
    with lockout_target("forever") as app:
        result = lockout(lockout_target_for(app.url, unlock="POST /api/admin/unlock"))
        assert result.outcome == "passed", result.message
        assert "restored (via POST /api/admin/unlock" in result.message
    with lockout_target("forever") as app:
        result = lockout(lockout_target_for(app.url, lock_s=900))
        assert result.outcome == "passed", result.message
        assert "the account stays locked for 900s" in result.message and "NOT restored" in result.message
        # Locked now: the next run cannot judge, and says why.
        again = lockout(lockout_target_for(app.url, lock_s=900))
        assert again.outcome == "error" and "does not log in" in again.message


def test_lockout_and_rate_limits_config_loads(tmp_path: Path) -> None:
    from pytest_prodready.config import Overrides, load_settings
    from pytest_prodready.exceptions import ConfigError

    (tmp_path / "prodready.toml").write_text(
        'base_url = "http://127.0.0.1:1"\n[rate_limits]\n"/api" = "100/minute"\n'
        '[lockout]\nendpoint = "POST /api/auth/login"\nusername_env = "QA_USER"\n'
        'password_env = "QA_PASSWORD"\nattempts = 3\nformat = "form"\n')
    settings = load_settings(tmp_path, Overrides(), environ={"QA_USER": "qa", "QA_PASSWORD": "pw-123456"})
    assert settings.secret("lockout.password_env") == "pw-123456"
    assert settings.get("lockout.attempts") == 3
    assert settings.get("rate_limits") == {"/api": "100/minute"}
    with pytest.raises(ConfigError, match="QA_PASSWORD"):
        load_settings(tmp_path, Overrides(), environ={"QA_USER": "qa"})
    (tmp_path / "prodready.toml").write_text(
        'base_url = "http://127.0.0.1:1"\n[rate_limits]\n"/api" = "lots"\n')
    with pytest.raises(ConfigError, match="is not a rate"):
        load_settings(tmp_path, Overrides(), environ={})
