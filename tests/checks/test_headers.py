"""headers.*: each check fails on a real target with the defect and passes on one without.

The shared webapp gives the defect/no-defect pair of every check. Edge cases the criteria
imply (CSP3 nonces, 'strict-dynamic', Referrer-Policy lists, HSTS boundaries...) are served
by a small Flask app of this module, whose pages answer with exactly the headers listed in
EDGE_PAGES, through the same real Werkzeug server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response

from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.headers import parse_csp, script_source_problems
from pytest_prodready.target import Target
from tests.targets.webapp import Served, serve_app

TargetFor = Callable[..., Target]
WebApp = Callable[..., Served]

# Page name -> the response headers it answers with (duplicates kept, in order).
EDGE_PAGES: dict[str, list[tuple[str, str]]] = {
    "hsts-179-days": [("Strict-Transport-Security", "max-age=15551999")],
    "hsts-180-days": [("Strict-Transport-Security", "max-age=15552000")],
    "hsts-quoted": [("Strict-Transport-Security", 'max-age="31536000"; includeSubDomains')],
    "hsts-no-max-age": [("Strict-Transport-Security", "includeSubDomains; preload")],
    "hsts-zero": [("Strict-Transport-Security", "max-age=0")],
    "nosniff-wrong": [("X-Content-Type-Options", "sniff")],
    "nosniff-mixed-case": [("X-Content-Type-Options", "NoSniff")],
    "frame-ancestors-only": [("Content-Security-Policy", "frame-ancestors 'self'")],
    "frame-ancestors-none": [("Content-Security-Policy", "default-src 'self'; frame-ancestors")],
    "frame-ancestors-star-with-xfo": [("Content-Security-Policy", "frame-ancestors *"),
                                      ("X-Frame-Options", "DENY")],
    "frame-ancestors-https": [("Content-Security-Policy", "frame-ancestors https:")],
    "frame-ancestors-report-only": [
        ("Content-Security-Policy-Report-Only", "frame-ancestors 'none'")],
    "xfo-allow-from": [("X-Frame-Options", "ALLOW-FROM https://partner.example")],
    "xfo-sameorigin": [("X-Frame-Options", "sameorigin")],
    "csp-nonce-unsafe-inline": [
        ("Content-Security-Policy", "script-src 'nonce-R4nd0mN0nce' 'unsafe-inline'")],
    "csp-hash-unsafe-inline": [
        ("Content-Security-Policy",
         "script-src 'sha256-B2yPHKaXnvFWtRChIbabYmUBFZdVfKKXHbWtWidDVF8=' 'unsafe-inline'")],
    "csp-strict-dynamic": [
        ("Content-Security-Policy", "object-src 'none'; script-src 'nonce-R4nd0mN0nce' "
                                    "'strict-dynamic' https: http: 'unsafe-inline'")],
    "csp-https-without-strict-dynamic": [
        ("Content-Security-Policy", "script-src 'nonce-R4nd0mN0nce' https:")],
    "csp-strict-dynamic-without-nonce": [
        ("Content-Security-Policy", "script-src 'strict-dynamic' https:")],
    "csp-nonce-unsafe-eval": [
        ("Content-Security-Policy", "script-src 'nonce-R4nd0mN0nce' 'unsafe-eval'")],
    "csp-default-wildcard": [("Content-Security-Policy", "default-src *")],
    "csp-data-scripts": [("Content-Security-Policy", "script-src 'self' data:")],
    "csp-no-script-directive": [("Content-Security-Policy", "img-src 'self'")],
    "csp-script-src-overrides-default": [
        ("Content-Security-Policy", "default-src *; script-src 'self'")],
    "csp-two-headers": [("Content-Security-Policy", "default-src *"),
                        ("Content-Security-Policy", "script-src 'self'")],
    "csp-list-restrictive-last": [("Content-Security-Policy", "default-src *, script-src 'self'")],
    "csp-list-restrictive-first": [("Content-Security-Policy", "default-src 'self', img-src *")],
    "csp-list-all-weak": [("Content-Security-Policy", "script-src 'unsafe-inline', object-src 'none'")],
    "referrer-list-last-safe": [("Referrer-Policy", "unsafe-url, strict-origin-when-cross-origin")],
    "referrer-list-last-unsafe": [("Referrer-Policy", "no-referrer, unsafe-url")],
    "referrer-unknown-last": [("Referrer-Policy", "no-referrer, some-future-policy")],
    "referrer-unknown-only": [("Referrer-Policy", "some-future-policy")],
    "referrer-two-headers-unsafe-last": [("Referrer-Policy", "no-referrer"),
                                         ("Referrer-Policy", "unsafe-url")],
    "referrer-two-headers-safe-last": [("Referrer-Policy", "unsafe-url"),
                                       ("Referrer-Policy", "same-origin")],
    "referrer-origin": [("Referrer-Policy", "origin")],
    "referrer-downgrade": [("Referrer-Policy", "no-referrer-when-downgrade")],
    "server-without-version": [("Server", "nginx")],
    "server-werkzeug": [("Server", "Werkzeug/3.0.1 Python/3.11.7")],
    "server-major-only": [("Server", "Apache/2")],
    "server-node-id": [("Server", "ECS (dcb/7F84)")],
    "powered-by-without-version": [("X-Powered-By", "PHP")],
    "aspnet-version": [("X-AspNet-Version", "4.0.30319")],
}


@pytest.fixture(scope="module")
def edge_url() -> Iterator[str]:
    """A real Werkzeug server answering /<page> with the headers of EDGE_PAGES[page]."""
    app = Flask("headers_edge_cases")

    @app.route("/<name>")
    def page(name: str) -> Response:
        return Response(b"<!doctype html><title>edge</title>", mimetype="text/html",
                        headers=EDGE_PAGES[name])

    with serve_app(app) as url:
        yield url


@pytest.fixture
def edge(edge_url: str, target_for: TargetFor) -> Callable[[str, str], Result]:
    """edge(check_id, page): the check's result on one edge page."""

    def judge(check_id: str, page: str) -> Result:
        assert page in EDGE_PAGES
        return run_check(check_id, target_for(edge_url), page=f"/{page}")

    return judge


def assert_failed(result: Result, *fragments: str) -> None:
    """The check failed, its message holds every fragment, the detail shows fix and evidence."""
    assert result.outcome == "failed", (result.outcome, result.message)
    for fragment in fragments:
        assert fragment in result.message, (fragment, result.message)
    assert f"[{result.check_id}]" in result.detail
    assert "Fix:" in result.detail
    assert "> GET http://127.0.0.1:" in result.detail
    assert result.exchanges and result.exchanges[0].status == 200


# -- headers.hsts -------------------------------------------------------------------------

@pytest.mark.parametrize(("defect", "fragment", "evidence"), [
    ("no_hsts", "no Strict-Transport-Security header", None),
    ("short_hsts", "86400s (1 days); at least 180 days", "< Strict-Transport-Security: max-age=86400"),
])
def test_hsts_fails_on_defect(webapp: WebApp, target_for: TargetFor, defect: str, fragment: str,
                              evidence: str | None) -> None:
    """A missing or one-day HSTS fails, naming the age; the plain-HTTP target is noted."""
    result = run_check("headers.hsts", target_for(webapp(defect)))
    assert_failed(result, fragment)
    if evidence:
        assert evidence in result.detail
    else:
        assert "plain HTTP, where browsers ignore HSTS" in result.message
        assert "< Strict-Transport-Security" not in result.detail


def test_hsts_passes_on_good_target(good_app: Served, target_for: TargetFor) -> None:
    """A one-year HSTS passes, and the message reports the age."""
    result = run_check("headers.hsts", target_for(good_app))
    assert result.outcome == "passed", result.message
    assert "31536000s (365 days)" in result.message


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("hsts-179-days", "failed", "15551999s (179 days)"),
    ("hsts-180-days", "passed", "15552000s (180 days)"),
    ("hsts-quoted", "passed", "31536000s"),
    ("hsts-no-max-age", "failed", "no valid max-age: 'includeSubDomains; preload'"),
    ("hsts-zero", "failed", "max-age is 0s"),
])
def test_hsts_edge_cases(edge: Callable[[str, str], Result], page: str, outcome: str,
                         fragment: str) -> None:
    """180 days is the floor (179 fails), a quoted max-age counts, no max-age fails."""
    result = edge("headers.hsts", page)
    assert result.outcome == outcome, result.message
    assert fragment in result.message


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("hsts-180-days", "failed", "without includeSubDomains ('max-age=15552000')"),
    ("hsts-quoted", "passed", "HSTS includes subdomains"),
    ("hsts-no-max-age", "passed", "HSTS includes subdomains"),
])
def test_hsts_include_subdomains_both_ways(edge: Callable[[str, str], Result], page: str,
                                           outcome: str, fragment: str) -> None:
    """HSTS without includeSubDomains passed silently under headers.hsts; a low-severity check
    of its own now says so (and the fix text of headers.hsts recommends it)."""
    result = edge("headers.hsts_include_subdomains", page)
    assert result.outcome == outcome, result.message
    assert fragment in result.message


def test_hsts_include_subdomains_skips_without_hsts(webapp: WebApp, target_for: TargetFor) -> None:
    result = run_check("headers.hsts_include_subdomains", target_for(webapp("no_hsts")))
    assert result.outcome == "skipped", result.message
    assert "headers.hsts judges that" in result.message


# -- headers.content_type_options -----------------------------------------------------------

def test_content_type_options_fails_without_nosniff(webapp: WebApp, target_for: TargetFor) -> None:
    """No X-Content-Type-Options fails with a message that says the header is missing."""
    result = run_check("headers.content_type_options", target_for(webapp("no_nosniff")))
    assert_failed(result, "no X-Content-Type-Options header")
    assert "< X-Content-Type-Options" not in result.detail


def test_content_type_options_passes_with_nosniff(good_app: Served, target_for: TargetFor) -> None:
    """nosniff passes."""
    result = run_check("headers.content_type_options", target_for(good_app))
    assert result.outcome == "passed"
    assert result.message == "X-Content-Type-Options: nosniff"


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("nosniff-wrong", "failed", "X-Content-Type-Options is 'sniff'"),
    ("nosniff-mixed-case", "passed", "nosniff"),
])
def test_content_type_options_edge_cases(edge: Callable[[str, str], Result], page: str,
                                         outcome: str, fragment: str) -> None:
    """A wrong value fails and is quoted; the value is compared case-insensitively."""
    result = edge("headers.content_type_options", page)
    assert result.outcome == outcome
    assert fragment in result.message


# -- headers.frame_options ------------------------------------------------------------------

@pytest.mark.parametrize("csp_defect", ["no_csp", "weak_csp", "csp_report_only"])
def test_frame_options_fails_when_frameable(webapp: WebApp, target_for: TargetFor,
                                            csp_defect: str) -> None:
    """No X-Frame-Options and no enforced frame-ancestors (none, absent, report-only) fails."""
    result = run_check("headers.frame_options", target_for(webapp("frameable", csp_defect)))
    assert_failed(result, "clickjacking", "no X-Frame-Options DENY/SAMEORIGIN")
    assert "< X-Frame-Options" not in result.detail


def test_frame_options_passes_with_xfo_deny(webapp: WebApp, target_for: TargetFor) -> None:
    """X-Frame-Options: DENY alone (no CSP) passes."""
    result = run_check("headers.frame_options", target_for(webapp("no_csp")))
    assert result.outcome == "passed"
    assert result.message == "X-Frame-Options: DENY"


def test_frame_options_passes_on_good_target(good_app: Served, target_for: TargetFor) -> None:
    """The good target's CSP frame-ancestors 'none' passes (and is what the message names)."""
    result = run_check("headers.frame_options", target_for(good_app))
    assert result.outcome == "passed"
    assert result.message == "CSP frame-ancestors 'none'"


def test_frame_options_frame_ancestors_without_xfo(webapp: WebApp, target_for: TargetFor) -> None:
    """'frameable' drops X-Frame-Options, but CSP frame-ancestors alone still protects."""
    result = run_check("headers.frame_options", target_for(webapp("frameable")))
    assert result.outcome == "passed"
    assert "frame-ancestors 'none'" in result.message


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("frame-ancestors-only", "passed", "CSP frame-ancestors 'self'"),
    ("frame-ancestors-none", "passed", "CSP frame-ancestors 'none'"),
    ("frame-ancestors-star-with-xfo", "failed", "frame-ancestors '*' allows it"),
    ("frame-ancestors-https", "failed", "frame-ancestors 'https:' allows it"),
    ("frame-ancestors-report-only", "failed", "no restrictive CSP frame-ancestors"),
    ("xfo-allow-from", "failed", "X-Frame-Options is 'ALLOW-FROM HTTPS://PARTNER.EXAMPLE'"),
    ("xfo-sameorigin", "passed", "X-Frame-Options: SAMEORIGIN"),
])
def test_frame_options_edge_cases(edge: Callable[[str, str], Result], page: str, outcome: str,
                                  fragment: str) -> None:
    """frame-ancestors alone passes; a permissive one fails even with XFO DENY (browsers
    ignore XFO then); report-only and ALLOW-FROM do not protect."""
    result = edge("headers.frame_options", page)
    assert result.outcome == outcome, result.message
    assert fragment in result.message


# -- headers.csp ----------------------------------------------------------------------------

@pytest.mark.parametrize(("defect", "fragments"), [
    ("no_csp", ["no Content-Security-Policy header"]),
    ("weak_csp", ["'unsafe-eval' allows eval()", "'unsafe-inline' without a nonce or hash"]),
    ("csp_report_only", ["only in report-only mode"]),
])
def test_csp_fails_on_defect(webapp: WebApp, target_for: TargetFor, defect: str,
                             fragments: list[str]) -> None:
    """No CSP, a CSP with unsafe-inline/unsafe-eval, and a report-only CSP all fail."""
    result = run_check("headers.csp", target_for(webapp(defect)))
    assert_failed(result, *fragments)
    if defect == "weak_csp":
        assert ("< Content-Security-Policy: default-src 'self'; script-src 'self' "
                "'unsafe-inline' 'unsafe-eval'") in result.detail
    if defect == "csp_report_only":
        assert "< Content-Security-Policy-Report-Only:" in result.detail


def test_csp_passes_on_good_target(good_app: Served, target_for: TargetFor) -> None:
    """default-src 'self' restricts scripts."""
    result = run_check("headers.csp", target_for(good_app))
    assert result.outcome == "passed"
    assert result.message == "CSP restricts script sources"


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("csp-nonce-unsafe-inline", "passed", ""),
    ("csp-hash-unsafe-inline", "passed", ""),
    ("csp-strict-dynamic", "passed", ""),
    ("csp-https-without-strict-dynamic", "failed", "https: allows scripts from anywhere"),
    ("csp-strict-dynamic-without-nonce", "failed", "https: allows scripts from anywhere"),
    ("csp-nonce-unsafe-eval", "failed", "'unsafe-eval' allows eval()"),
    ("csp-default-wildcard", "failed", "* allows scripts from anywhere"),
    ("csp-data-scripts", "failed", "data: allows scripts from anywhere"),
    ("csp-no-script-directive", "failed", "no script-src or default-src directive"),
    ("csp-script-src-overrides-default", "passed", ""),
    ("csp-two-headers", "passed", ""),
    ("csp-list-restrictive-last", "passed", ""),
    ("csp-list-restrictive-first", "passed", ""),
    ("csp-list-all-weak", "failed", "'unsafe-inline' without a nonce or hash"),
])
def test_csp_edge_cases(edge: Callable[[str, str], Result], page: str, outcome: str,
                        fragment: str) -> None:
    """CSP3: a nonce/hash neutralises 'unsafe-inline'; 'strict-dynamic' with a nonce
    neutralises https:/http:; without them those fail. Policies intersect, so one
    restrictive policy (a second header, or after a comma) is enough."""
    result = edge("headers.csp", page)
    assert result.outcome == outcome, result.message
    assert fragment in result.message


def test_parse_csp_first_directive_wins_and_lowercases() -> None:
    """A repeated directive is ignored after its first occurrence; names and sources fold case."""
    parsed = parse_csp("Script-Src 'SELF'; script-src *;; img-src  data: ;")
    assert parsed == {"script-src": ["'self'"], "img-src": ["data:"]}


@pytest.mark.parametrize(("policy", "problems"), [
    ("default-src 'self'", []),
    ("script-src 'nonce-abc' 'unsafe-inline'", []),
    ("script-src 'sha384-abc' 'strict-dynamic' https: *", []),
    ("script-src 'unsafe-inline'", ["'unsafe-inline' without a nonce or hash allows inline scripts"]),
    ("script-src 'strict-dynamic' *", ["* allows scripts from anywhere"]),
    ("script-src blob: filesystem:", ["blob:, filesystem: allows scripts from anywhere"]),
    ("style-src 'self'", ["no script-src or default-src directive, so any script may run"]),
])
def test_script_source_problems(policy: str, problems: list[str]) -> None:
    """The pure judge of a script source list, on the CSP3 rules."""
    assert script_source_problems(parse_csp(policy)) == problems


# -- headers.referrer_policy -----------------------------------------------------------------

@pytest.mark.parametrize(("defect", "fragment"), [
    ("unsafe_referrer", "Referrer-Policy 'unsafe-url' leaks full URLs"),
    ("no_referrer_policy", "no Referrer-Policy header"),
])
def test_referrer_policy_fails_on_defect(webapp: WebApp, target_for: TargetFor, defect: str,
                                         fragment: str) -> None:
    """unsafe-url and a missing header fail; the offending value is quoted."""
    result = run_check("headers.referrer_policy", target_for(webapp(defect)))
    assert_failed(result, fragment)
    if defect == "unsafe_referrer":
        assert "< Referrer-Policy: unsafe-url" in result.detail


def test_referrer_policy_passes_on_good_target(good_app: Served, target_for: TargetFor) -> None:
    """strict-origin-when-cross-origin passes."""
    result = run_check("headers.referrer_policy", target_for(good_app))
    assert result.outcome == "passed"
    assert result.message == "Referrer-Policy: strict-origin-when-cross-origin"


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("referrer-list-last-safe", "passed", "strict-origin-when-cross-origin"),
    ("referrer-list-last-unsafe", "failed", "'unsafe-url'"),
    ("referrer-unknown-last", "passed", "Referrer-Policy: no-referrer"),
    ("referrer-unknown-only", "failed", "'some-future-policy' names no policy browsers recognise"),
    ("referrer-two-headers-unsafe-last", "failed", "'unsafe-url'"),
    ("referrer-two-headers-safe-last", "passed", "Referrer-Policy: same-origin"),
    ("referrer-origin", "failed", "'origin' leaks the page's origin"),
    ("referrer-downgrade", "failed", "'no-referrer-when-downgrade' leaks full URLs"),
])
def test_referrer_policy_edge_cases(edge: Callable[[str, str], Result], page: str, outcome: str,
                                    fragment: str) -> None:
    """The last token a browser recognises wins, across a list and across header lines;
    unknown tokens are skipped (a fallback list), and only the four safe policies pass."""
    result = edge("headers.referrer_policy", page)
    assert result.outcome == outcome, result.message
    assert fragment in result.message


# -- headers.no_version_disclosure ------------------------------------------------------------

def test_version_disclosure_fails(webapp: WebApp, target_for: TargetFor) -> None:
    """X-Powered-By and a versioned Server are both named, with their values."""
    result = run_check("headers.no_version_disclosure", target_for(webapp("version_disclosure")))
    assert_failed(result, "X-Powered-By: Express 4.17.1", "Server: nginx/1.18.0")
    assert "< X-Powered-By: Express 4.17.1" in result.detail


def test_version_disclosure_passes_on_good_target(good_app: Served, target_for: TargetFor) -> None:
    """A Server header without a version ('app') passes and is shown."""
    result = run_check("headers.no_version_disclosure", target_for(good_app))
    assert result.outcome == "passed"
    assert result.message == "no software version disclosed (Server: app)"


@pytest.mark.parametrize(("page", "outcome", "fragment"), [
    ("server-without-version", "passed", "(Server: app, nginx)"),
    ("server-werkzeug", "failed", "Server: Werkzeug/3.0.1 Python/3.11.7"),
    ("server-major-only", "failed", "Server: Apache/2"),  # Apache's ServerTokens Major
    ("server-node-id", "passed", "ECS (dcb/7F84)"),
    ("powered-by-without-version", "failed", "X-Powered-By: PHP"),
    ("aspnet-version", "failed", "X-AspNet-Version: 4.0.30319"),
])
def test_version_disclosure_edge_cases(edge: Callable[[str, str], Result], page: str,
                                       outcome: str, fragment: str) -> None:
    """A bare product name in Server is fine; any X-Powered-By, a versioned Server
    (Werkzeug's default) and X-AspNet-Version fail. Werkzeug always sends its own Server
    line ('app' here) before the application's, so every Server line is judged."""
    result = edge("headers.no_version_disclosure", page)
    assert result.outcome == outcome, result.message
    assert fragment in result.message


# -- the family as a whole ----------------------------------------------------------------------

HEADER_CHECKS = ["headers.hsts", "headers.content_type_options", "headers.frame_options",
                 "headers.csp", "headers.referrer_policy", "headers.no_version_disclosure"]


def test_all_header_checks_share_one_get(webapp: WebApp, target_for: TargetFor) -> None:
    """The six checks judge one cached GET of the page: the target sees a single request."""
    served = webapp()
    target = target_for(served)
    outcomes = {check_id: run_check(check_id, target).outcome for check_id in HEADER_CHECKS}
    assert set(outcomes.values()) == {"passed"}, outcomes
    assert [(seen.method, seen.path) for seen in served.log] == [("GET", "/")]


def test_header_checks_report_a_down_target_as_error(target_for: TargetFor) -> None:
    """A target that does not answer is an error (cannot judge), never a pass or a fail."""
    result = run_check("headers.hsts", target_for("http://127.0.0.1:9", timeout_s=2, retries=0))
    assert result.outcome == "error"
    assert "connection refused" in result.message
