"""headers.*: security headers on the target's page, judged from one GET (like MDN's Observatory)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import page_probe
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

HSTS_MIN_AGE_S = 180 * 24 * 3600
SAFE_REFERRER_POLICIES = frozenset(
    {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"})
# Every policy token browsers know; unknown tokens are skipped (Referrer Policy spec).
KNOWN_REFERRER_POLICIES = SAFE_REFERRER_POLICIES | {
    "no-referrer-when-downgrade", "origin", "origin-when-cross-origin", "unsafe-url"}
# Sources that let any script run: a bare wildcard or a whole scheme.
UNSAFE_SCRIPT_SOURCES = frozenset({"*", "http:", "https:", "data:", "blob:", "filesystem:"})
# frame-ancestors sources that let any site (or any HTTPS site) frame the page.
PERMISSIVE_ANCESTORS = frozenset({"*", "http:", "https:", "http://*", "https://*"})
NONE = "'none'"


def _page(settings: Settings, _subject: str) -> list[Probe]:
    return [page_probe(settings)]


def _response(ctx: Context) -> Exchange:
    return ctx.fetch(page_probe(ctx.settings))


def _plain_http_note(ctx: Context) -> str:
    return " (note: the target is plain HTTP, where browsers ignore HSTS)" \
        if urlsplit(ctx.target.base_url).scheme == "http" else ""


def enforced_policies(ex: Exchange) -> list[str]:
    """Every enforced CSP of a response: each header line, split on commas (a CSP list)."""
    return [p for value in ex.header_all("Content-Security-Policy")
            for p in value.split(",") if p.strip()]


def parse_csp(policy: str) -> dict[str, list[str]]:
    """Directive name -> source list. The first occurrence of a directive wins (CSP spec)."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.strip().split()
        if tokens and tokens[0].lower() not in directives:
            directives[tokens[0].lower()] = [t.lower() for t in tokens[1:]]
    return directives


def script_source_problems(directives: dict[str, list[str]]) -> list[str]:
    """Why this policy does not restrict scripts (empty when it does)."""
    sources = directives.get("script-src", directives.get("default-src"))
    if sources is None:
        return ["no script-src or default-src directive, so any script may run"]
    has_nonce_or_hash = any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in sources)
    strict_dynamic = "'strict-dynamic'" in sources
    problems = []
    if "'unsafe-eval'" in sources:
        problems.append("'unsafe-eval' allows eval()")
    # CSP3: 'unsafe-inline' is ignored when a nonce or hash is present.
    if "'unsafe-inline'" in sources and not has_nonce_or_hash:
        problems.append("'unsafe-inline' without a nonce or hash allows inline scripts")
    wild = [s for s in sources if s in UNSAFE_SCRIPT_SOURCES]
    # With 'strict-dynamic' and a nonce/hash, browsers ignore host and scheme sources.
    if wild and not (strict_dynamic and has_nonce_or_hash):
        problems.append(f"{', '.join(wild)} allows scripts from anywhere")
    return problems


@check("headers.hsts", title="Strict-Transport-Security with max-age >= 180 days",
       severity="high", probes=_page,
       remediation="Send 'Strict-Transport-Security: max-age=31536000; includeSubDomains' "
                   "on HTTPS responses.")
def hsts(ctx: Context) -> None:
    ex = _response(ctx)
    value = ex.header("Strict-Transport-Security")
    if value is None:
        ctx.fail("no Strict-Transport-Security header" + _plain_http_note(ctx))
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.IGNORECASE)
    if not match:
        ctx.fail(f"Strict-Transport-Security has no valid max-age: {value!r}")
    age = int(match.group(1))
    if age < HSTS_MIN_AGE_S:
        ctx.fail(f"HSTS max-age is {age}s ({age // 86400} days); at least 180 days is needed")
    ctx.passed(f"HSTS max-age {age}s ({age // 86400} days)" + _plain_http_note(ctx))


@check("headers.hsts_include_subdomains", title="HSTS covers subdomains (includeSubDomains)",
       severity="low", probes=_page,
       remediation="Add includeSubDomains to Strict-Transport-Security once every subdomain serves "
                   "HTTPS: 'max-age=31536000; includeSubDomains'.")
def hsts_include_subdomains(ctx: Context) -> None:
    value = _response(ctx).header("Strict-Transport-Security")
    if value is None:
        ctx.skip("no Strict-Transport-Security header (headers.hsts judges that)")
    directives = {d.strip().split("=", 1)[0].lower() for d in value.split(";")}
    if "includesubdomains" not in directives:
        ctx.fail(f"Strict-Transport-Security without includeSubDomains ({value!r}): a subdomain "
                 "can still be reached, and its cookies set, over plain HTTP")
    ctx.passed(f"HSTS includes subdomains ({value!r})")


@check("headers.content_type_options", title="X-Content-Type-Options: nosniff",
       severity="medium", probes=_page,
       remediation="Send 'X-Content-Type-Options: nosniff' on every response.")
def content_type_options(ctx: Context) -> None:
    value = _response(ctx).header("X-Content-Type-Options")
    if value is None:
        ctx.fail("no X-Content-Type-Options header, expected 'nosniff'")
    if value.strip().lower() != "nosniff":
        ctx.fail(f"X-Content-Type-Options is {value!r}, expected 'nosniff'")
    ctx.passed("X-Content-Type-Options: nosniff")


@check("headers.frame_options", title="X-Frame-Options or CSP frame-ancestors prevents framing",
       severity="medium", probes=_page,
       remediation="Send CSP 'frame-ancestors 'none'' (or 'self'), or 'X-Frame-Options: DENY'.")
def frame_options(ctx: Context) -> None:
    ex = _response(ctx)
    ancestor_lists = [d["frame-ancestors"] for d in map(parse_csp, enforced_policies(ex))
                      if "frame-ancestors" in d]
    if ancestor_lists:
        # Browsers ignore X-Frame-Options when an enforced CSP has frame-ancestors; every
        # policy applies, so one restrictive list is enough.
        for ancestors in ancestor_lists:
            if not PERMISSIVE_ANCESTORS.intersection(ancestors):
                ctx.passed(f"CSP frame-ancestors {' '.join(ancestors) or NONE}")
                return
        ctx.fail("the page may be framed by any site (clickjacking): CSP frame-ancestors "
                 f"{' '.join(ancestor_lists[0])!r} allows it (browsers then ignore X-Frame-Options)")
    xfo = (ex.header("X-Frame-Options") or "").strip().upper()
    if xfo in ("DENY", "SAMEORIGIN"):
        ctx.passed(f"X-Frame-Options: {xfo}")
        return
    ctx.fail("the page may be framed by any site (clickjacking): no X-Frame-Options DENY/SAMEORIGIN "
             "and no restrictive CSP frame-ancestors" + (f"; X-Frame-Options is {xfo!r}" if xfo else ""))


@check("headers.csp", title="a Content-Security-Policy that restricts scripts",
       severity="medium", probes=_page,
       remediation="Send a CSP whose script-src uses 'self', nonces or hashes, without "
                   "'unsafe-inline', 'unsafe-eval' or wildcards.")
def csp(ctx: Context) -> None:
    ex = _response(ctx)
    policies = enforced_policies(ex)
    if not policies:
        only_report = ex.header("Content-Security-Policy-Report-Only")
        ctx.fail("CSP is only in report-only mode, which enforces nothing" if only_report
                 else "no Content-Security-Policy header")
    # Every enforced policy applies, so one policy that restricts scripts is enough.
    findings = [script_source_problems(parse_csp(p)) for p in policies]
    if all(findings):
        ctx.fail("CSP does not restrict scripts: " + "; ".join(findings[0]))
    ctx.passed("CSP restricts script sources")


@check("headers.referrer_policy", title="a safe Referrer-Policy", severity="low", probes=_page,
       remediation="Send 'Referrer-Policy: strict-origin-when-cross-origin' (or stricter).")
def referrer_policy(ctx: Context) -> None:
    values = _response(ctx).header_all("Referrer-Policy")
    if not values:
        ctx.fail("no Referrer-Policy header")
    # Browsers use the last policy token they recognise, across all Referrer-Policy lines.
    tokens = [t.strip().lower() for v in values for t in v.split(",") if t.strip()]
    known = [t for t in tokens if t in KNOWN_REFERRER_POLICIES]
    if not known:
        ctx.fail(f"Referrer-Policy {', '.join(values)!r} names no policy browsers recognise")
    effective = known[-1]
    if effective not in SAFE_REFERRER_POLICIES:
        leak = ("the page's origin to other sites, even over plain HTTP"
                if effective.startswith("origin") else "full URLs to other sites")
        ctx.fail(f"Referrer-Policy {effective!r} leaks {leak}")
    ctx.passed(f"Referrer-Policy: {effective}")


# A version in a Server header: a dotted number (Jetty(9.4.z)), or a product's version after
# its slash (RFC 9110 product tokens: Apache/2, nginx/1.18.0), not a node id that starts
# with a digit (Edgecast's 'ECS (dcb/7F84)').
SERVER_VERSION = re.compile(r"\d+\.\d+|/v?\d+\b")


@check("headers.no_version_disclosure", title="no X-Powered-By, no version in Server",
       severity="low", probes=_page,
       remediation="Remove X-Powered-By and the version from the Server header "
                   "(e.g. nginx 'server_tokens off').")
def no_version_disclosure(ctx: Context) -> None:
    ex = _response(ctx)
    leaks = [f"{name}: {ex.header(name)}" for name in
             ("X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version") if ex.header(name)]
    servers = [s.strip() for s in ex.header_all("Server")]
    leaks += [f"Server: {s}" for s in servers if SERVER_VERSION.search(s)]
    if leaks:
        ctx.fail("software versions disclosed: " + "; ".join(leaks))
    ctx.passed("no software version disclosed" + (f" (Server: {', '.join(servers)})" if servers else ""))


FAMILY = Family(name="headers")
