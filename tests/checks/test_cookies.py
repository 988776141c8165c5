"""cookies.flags: fails on a real target that sets a cookie with unsafe flags, passes otherwise.

The shared webapp gives the defect/no-defect pair ('insecure_cookie'). The edge cases are
served by a small Flask app of this module: each path answers with exactly the Set-Cookie
lines of COOKIE_PAGES, on the same real Werkzeug server, and the check is pointed at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response

from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.cookies import cookie_problems, parse_set_cookie
from pytest_prodready.target import Target
from tests.targets.webapp import Served, serve_app

TargetFor = Callable[..., Target]
WebApp = Callable[..., Served]

JWT_VALUE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"

# Path -> the Set-Cookie lines it answers with, exactly as a server would send them.
COOKIE_PAGES: dict[str, list[str]] = {
    "none-without-secure": ["prefs=compact; Path=/; SameSite=None"],
    "none-with-secure": ["prefs=compact; Path=/; Secure; SameSite=None"],
    "csrf-readable": ["csrftoken=Zm9vYmFy; Path=/; Secure; SameSite=Lax",
                      "XSRF-TOKEN=YmF6cXV4; Path=/; Secure; SameSite=Strict"],
    "session-readable": ["sessionid=s3ss10nv4lue; Path=/; Secure; SameSite=Lax"],
    "jwt-readable": [f"access_token={JWT_VALUE}; Path=/; Secure; SameSite=Strict"],
    "plain-readable": ["theme=dark; Path=/; Secure; SameSite=Lax"],
    "no-samesite": ["__Host-sid=s3ss10nv4lue; Path=/; Secure; HttpOnly"],
    "bad-samesite": ["sid=s3ss10nv4lue; Path=/; Secure; HttpOnly; SameSite=Sometimes"],
    "one-bad-of-three": ["theme=dark; Path=/; Secure; SameSite=Lax",
                         "lang=en; Path=/",
                         "sessionid=s3ss10nv4lue; Path=/; Secure; HttpOnly; SameSite=Lax"],
    "priority-attribute": ["sid=s3ss10nv4lue; Path=/; Priority=High; Secure; HttpOnly; SameSite=Lax"],
    "json-value": ['prefs={"theme":"dark"}; Path=/; Secure; SameSite=Lax'],
    "lowercase-attributes": ["sessionid=s3ss10nv4lue; path=/; secure; httponly; samesite=strict"],
    "no-cookies": [],
}


def cookie_app() -> Flask:
    """COOKIE_PAGES as raw lines, plus two pages whose cookies Werkzeug itself formats."""
    app = Flask("cookies_edge_cases")

    @app.route("/<name>")
    def page(name: str) -> Response:
        return Response(b"<!doctype html><title>cookies</title>", mimetype="text/html",
                        headers=[("Set-Cookie", line) for line in COOKIE_PAGES[name]])

    @app.route("/login/<flavour>")
    def login(flavour: str) -> Response:
        """How most login flows set the session: a 302 with Set-Cookie, then a page without."""
        resp = Response(status=302, headers={"Location": "/no-cookies"})
        if flavour == "unsafe":
            resp.headers["Set-Cookie"] = "sessionid=s3ss10nv4lue; Path=/"
        else:
            resp.headers["Set-Cookie"] = "sessionid=s3ss10nv4lue; Path=/; Secure; HttpOnly; SameSite=Lax"
        return resp

    @app.route("/werkzeug/partitioned")
    def partitioned() -> Response:
        resp = Response("ok")  # CHIPS: a partitioned third-party session cookie
        resp.set_cookie("__Host-sid", "s3ss10nv4lue", secure=True, httponly=True,
                        samesite="None", partitioned=True)
        return resp

    @app.route("/werkzeug/expires")
    def expires() -> Response:
        resp = Response("ok")  # max_age also writes 'Expires=Wed, 21 Oct ...' (a comma)
        resp.set_cookie("remember_me", "r3m3mb3r", max_age=3600, secure=True, httponly=True,
                        samesite="Lax")
        return resp

    return app


@pytest.fixture(scope="module")
def cookie_url() -> Iterator[str]:
    """The cookie app on a real Werkzeug server on 127.0.0.1."""
    with serve_app(cookie_app()) as url:
        yield url


@pytest.fixture
def on_page(cookie_url: str, target_for: TargetFor) -> Callable[[str], Result]:
    """on_page(path): cookies.flags judged on that one path of the cookie app."""

    def judge(path: str) -> Result:
        return run_check("cookies.flags", target_for(cookie_url), path)

    return judge


# -- the shared webapp: defect and no defect -------------------------------------------------

def test_insecure_session_cookie_fails(webapp: WebApp, target_for: TargetFor) -> None:
    """A bare 'sessionid' cookie fails on all three flags, found among the run's ordinary
    responses; the evidence shows its Set-Cookie line with the value masked."""
    result = run_check("cookies.flags", target_for(webapp("insecure_cookie")))
    assert result.outcome == "failed", result.message
    assert result.message == ("1 cookie(s) with unsafe flags: sessionid (GET /): not Secure, "
                              "a session cookie without HttpOnly, no SameSite")
    assert [ex.where for ex in result.exchanges] == ["GET /"]
    assert "< Set-Cookie: sessionid=****; Path=/" in result.detail
    assert "Fix: Set cookies with 'Secure; HttpOnly; SameSite=Lax'" in result.detail
    assert "abc123def456" not in result.detail


def test_safe_session_cookie_passes(good_app: Served, target_for: TargetFor) -> None:
    """Secure; HttpOnly; SameSite=Lax passes, counted once over all the probed responses."""
    result = run_check("cookies.flags", target_for(good_app))
    assert result.outcome == "passed", result.message
    assert result.message == "1 cookie(s) with safe flags"
    assert len(result.exchanges) >= 4  # page, 404, health, anonymous protected calls


def test_subject_limits_the_check_to_one_path(good_app: Served, target_for: TargetFor) -> None:
    """With a subject only that path is probed: /api/health sets no cookie, so it is skipped."""
    result = run_check("cookies.flags", target_for(good_app), "/api/health")
    assert result.outcome == "skipped"
    assert [ex.where for ex in result.exchanges] == ["GET /api/health"]


# -- edge cases --------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "problem"), [
    ("/none-without-secure", "prefs (GET /none-without-secure): not Secure, "
                             "SameSite=None without Secure (browsers reject it)"),
    ("/session-readable", "sessionid (GET /session-readable): a session cookie without HttpOnly"),
    ("/jwt-readable", "access_token (GET /jwt-readable): a session cookie without HttpOnly"),
    ("/no-samesite", "__Host-sid (GET /no-samesite): no SameSite"),
    ("/bad-samesite", "sid (GET /bad-samesite): SameSite='Sometimes' is not Strict, Lax or None"),
])
def test_unsafe_flags_fail(on_page: Callable[[str], Result], path: str, problem: str) -> None:
    """SameSite=None without Secure, a script-readable session or token cookie, a missing or
    invalid SameSite: each fails, naming the cookie, where it was set, and the problem."""
    result = on_page(path)
    assert result.outcome == "failed", result.message
    assert result.message.startswith("1 cookie(s) with unsafe flags: ")
    assert problem in result.message
    assert "> GET http://127.0.0.1:" in result.detail
    assert "< Set-Cookie: " in result.detail
    assert "s3ss10nv4lue" not in result.detail
    assert JWT_VALUE not in result.detail


@pytest.mark.parametrize(("path", "count"), [
    ("/none-with-secure", 1),
    ("/csrf-readable", 2),
    ("/plain-readable", 1),
    ("/priority-attribute", 1),
    ("/json-value", 1),
    ("/lowercase-attributes", 1),
    ("/werkzeug/partitioned", 1),
    ("/werkzeug/expires", 1),
])
def test_safe_flags_pass(on_page: Callable[[str], Result], path: str, count: int) -> None:
    """SameSite=None with Secure, CSRF cookies and non-session cookies without HttpOnly, and
    cookies browsers accept (Priority, Partitioned, JSON values, Expires with a comma,
    lower-case attributes) all pass."""
    result = on_page(path)
    assert result.outcome == "passed", result.message
    assert result.message == f"{count} cookie(s) with safe flags"


def test_one_bad_cookie_among_several_fails_alone(on_page: Callable[[str], Result]) -> None:
    """Only the unsafe cookie of three is reported."""
    result = on_page("/one-bad-of-three")
    assert result.outcome == "failed"
    assert result.message == ("1 cookie(s) with unsafe flags: lang (GET /one-bad-of-three): "
                              "not Secure, no SameSite")


def test_a_session_cookie_set_on_a_redirect_is_judged(on_page: Callable[[str], Result]) -> None:
    """A 302 + Set-Cookie (a login flow) was 'nothing to judge'; now the hop is judged."""
    result = on_page("/login/unsafe")
    assert result.outcome == "failed", result.message
    assert "sessionid (GET /login/unsafe, on its 302 redirect): not Secure" in result.message
    assert "< Set-Cookie: sessionid=****; Path=/" in result.detail
    result = on_page("/login/safe")
    assert result.outcome == "passed", result.message


def test_cookies_paths_names_the_page_that_sets_the_session(cookie_url: str,
                                                            target_for: TargetFor) -> None:
    """Without a subject, the pages of cookies.paths join the probed responses."""
    target = target_for(cookie_url, page="/no-cookies", health=[], protected=[],
                        cookies={"paths": ["/login/unsafe"]})
    result = run_check("cookies.flags", target)
    assert result.outcome == "failed", result.message
    assert "sessionid (GET /login/unsafe, on its 302 redirect)" in result.message
    target = target_for(cookie_url, page="/no-cookies", health=[], protected=[])
    assert run_check("cookies.flags", target).outcome == "skipped"


def test_no_cookies_is_skipped(on_page: Callable[[str], Result]) -> None:
    """A response without Set-Cookie gives nothing to judge: skipped, never passed."""
    result = on_page("/no-cookies")
    assert result.outcome == "skipped"
    assert result.message == "no Set-Cookie in the probed responses: nothing to judge"


def test_down_target_is_an_error(target_for: TargetFor) -> None:
    """When no probe gets an answer the check cannot judge: an error, not a skip."""
    result = run_check("cookies.flags", target_for("http://127.0.0.1:9", timeout_s=2, retries=0))
    assert result.outcome == "error"
    assert "no probe got an answer" in result.message


# -- the pure parser -------------------------------------------------------------------------------

def test_parse_set_cookie_reads_attributes_like_a_browser() -> None:
    """Attribute names fold case, valueless flags map to '', the last occurrence wins."""
    name, attrs = parse_set_cookie("sid=a b=c; Secure; SAMESITE=None; Priority=High; samesite=Lax")
    assert name == "sid"
    assert attrs == {"secure": "", "samesite": "Lax", "priority": "High"}


@pytest.mark.parametrize(("line", "problems"), [
    ("sid=x; Secure; HttpOnly; SameSite=Strict", []),
    ("XSRF-TOKEN=x; Secure; SameSite=Lax", []),
    ("connect.sid=x; Secure; SameSite=Lax", ["a session cookie without HttpOnly"]),
    ("prefs=x; SameSite=none", ["not Secure", "SameSite=None without Secure (browsers reject it)"]),
    ("", ["the Set-Cookie header cannot be parsed"]),
])
def test_cookie_problems(line: str, problems: list[str]) -> None:
    """The pure judge of one Set-Cookie line."""
    assert cookie_problems(line)[1] == problems


@pytest.fixture(scope="module")
def everywhere() -> Iterator[str]:
    """Django-style: the session cookie set again on every response (SESSION_SAVE_EVERY_REQUEST)."""
    app = Flask("cookie_everywhere")

    @app.after_request
    def session(response: Response) -> Response:
        response.headers.add("Set-Cookie", "sessionid=s3ss10nv4lue; Path=/; HttpOnly; SameSite=Lax")
        return response

    @app.route("/")
    @app.route("/login")
    def page() -> str:
        return "<!doctype html><title>shop</title>"

    with serve_app(app) as url:
        yield url


def test_a_cookie_set_on_every_response_is_one_cookie_with_its_places(
        everywhere: str, target_for: TargetFor) -> None:
    target = target_for(everywhere, protected=[], health=[], cookies={"paths": ["/login"]})
    result = run_check("cookies.flags", target)
    assert result.outcome == "failed", result.message
    assert result.message.startswith("1 cookie(s) with unsafe flags: sessionid (GET /, ")
    assert result.message.count("sessionid") == 1 and result.message.endswith("): not Secure")


@pytest.mark.parametrize("name", ["sessionid", "PHPSESSID", "JSESSIONID", "session", "_shop_session",
                                  "connect.sid", ".AspNetCore.Cookies", ".AspNetCore.Identity.Application",
                                  ".ASPXAUTH", "auth_token", "access_token", "jwt", "remember_me",
                                  "laravel_session", "next-auth.session-token"])
def test_the_session_cookies_of_real_frameworks_must_be_httponly(name: str) -> None:
    problems = cookie_problems(f"{name}=v; Path=/; Secure; SameSite=Lax")[1]
    assert "a session cookie without HttpOnly" in problems


@pytest.mark.parametrize("name", ["author", "author_pref", "theme", "csrftoken", "XSRF-TOKEN", "lang"])
def test_other_cookies_may_be_read_by_scripts(name: str) -> None:
    assert cookie_problems(f"{name}=v; Path=/; Secure; SameSite=Lax")[1] == []
