"""errors.*: unknown paths get 404, malformed input gets 4xx, no stack traces, no internal hosts."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pytest_prodready.checking import Context
from pytest_prodready.checks.common import BODY_METHODS, base_probes, not_found_probe
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.registry import check
from pytest_prodready.target import Probe

MALFORMED_JSON = b'{"prodready": "malformed", '
# Traces and debug pages of the common stacks. Each pattern is specific to a real trace.
STACK_TRACES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Python traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("Werkzeug debugger", re.compile(r"Werkzeug Debugger|The debugger caught an exception")),
    ("Django debug page", re.compile(r"You're seeing this error because you have <code>DEBUG = True")),
    ("Java stack trace", re.compile(r"(Exception|Error)(: [^\n]*)?\n\s+at [\w$.]+\([\w$]+\.java:\d+\)")),
    ("Node.js stack trace",
     re.compile(r"\n\s+at (?:[\w$.<>]+ )?\(?(?:/|[A-Za-z]:\\|node:)[^\n]*:\d+:\d+\)?")),
    ("PHP error",
     re.compile(r"(Fatal error|Parse error|Warning)</b>?: .* on line <b>?\d+|Stack trace:\n#0 ")),
    ("Ruby backtrace", re.compile(r"\.rb:\d+:in `")),
    ("Go panic", re.compile(r"goroutine \d+ \[running\]|panic: runtime error")),
    (".NET exception", re.compile(r"   at System\.[\w.]+\(|Server Error in '/' Application")),
    ("Rails error page", re.compile(r"Action Controller: Exception caught")),
    ("Laravel error page", re.compile(r"Whoops, looks like something went wrong|Illuminate\\\\")),
)
INTERNAL_NAME = re.compile(
    r"\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:internal|local|lan|corp|intranet|svc\.cluster\.local)\b",
    re.IGNORECASE)
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")


def json_endpoints(settings: Settings) -> list[str]:
    configured = settings.get("errors.json_endpoints")
    if configured:
        return list(configured)
    return [e for e in settings.get("protected", []) if e.partition(" ")[0] in BODY_METHODS]


def malformed_probe(settings: Settings, endpoint: str) -> Probe:
    credential = "auth.token_env" if settings.secret("auth.token_env") else None
    return Probe.endpoint(endpoint, {"Content-Type": "application/json"}, body=MALFORMED_JSON,
                          credential=credential, follow_redirects=False)


def odd_request_probes(settings: Settings) -> list[Probe]:
    """Requests a framework commonly chokes on: unknown paths, bad encodings, odd parameters."""
    page = str(settings.get("page", "/"))
    sep = "&" if "?" in page else "?"
    return [
        not_found_probe(),
        Probe.get(f"{page}{sep}id[]=1&id[a]=%ff&limit=-1&page=%00"),
        Probe.get("/prodready-nonexistent-3f9c1a7e/%2e%2e%2f%c0%ae"),
    ]


def _trace_probes(settings: Settings, _subject: str) -> list[Probe]:
    return odd_request_probes(settings) + [malformed_probe(settings, e) for e in json_endpoints(settings)]


def find_trace(ex: Exchange) -> str | None:
    text = ex.text
    for kind, pattern in STACK_TRACES:
        if pattern.search(text):
            return kind
    return None


@check("errors.not_found_is_404", title="an unknown path gets 404", severity="medium",
       probes=lambda s, _: [not_found_probe()],
       remediation="Answer unknown paths with 404 (an SPA may serve its index only for HTML routes).")
def not_found_is_404(ctx: Context) -> None:
    ex = ctx.fetch(not_found_probe())
    if ex.status not in (404, 410):
        ctx.fail(f"an unknown path answered {ex.status}, expected 404", ex)
    ctx.passed(f"unknown path answered {ex.status}")


@check("errors.malformed_input_is_4xx", title="malformed JSON gets 400/422, not 500",
       severity="medium", subjects=json_endpoints,
       probes=lambda s, endpoint: [malformed_probe(s, endpoint)] if endpoint else [],
       remediation="Parse request bodies defensively and answer 400 (or 422) on invalid JSON.")
def malformed_input_is_4xx(ctx: Context) -> None:
    if not ctx.subject:
        ctx.skip("not configured: set errors.json_endpoints (or list POST endpoints in protected)")
    ex = ctx.fetch(malformed_probe(ctx.settings, ctx.subject))
    status = ex.status or 0
    if status in (401, 403):
        if ctx.settings.secret("auth.token_env"):
            ctx.skip(f"{ctx.subject} refused the token from auth.token_env ({status}) before "
                     "parsing the body; check that the token is valid for this endpoint")
        ctx.skip(f"{ctx.subject} refused the call ({status}) before parsing the body; "
                 "set auth.token_env so the malformed body reaches the parser")
    if status in (404, 405):
        ctx.fail(f"{ctx.subject} answered {status}: check the endpoint in errors.json_endpoints", ex)
    if not 400 <= status < 500:
        ctx.fail(f"malformed JSON to {ctx.subject} answered {status}, expected 400 or 422", ex)
    trace = find_trace(ex)
    if trace:
        ctx.fail(f"malformed JSON to {ctx.subject} answered {status} but with a {trace}", ex)
    ctx.passed(f"malformed JSON answered {status}")


@check("errors.no_stack_traces", title="malformed requests expose no stack trace or debug page",
       severity="high", probes=_trace_probes,
       remediation="Turn off debug mode in production and return generic error pages; "
                   "log traces server-side only.")
def no_stack_traces(ctx: Context) -> None:
    hits = [(trace, ex) for ex in ctx.responses() if (trace := find_trace(ex))]
    if hits:
        ctx.fail("stack traces exposed: " + "; ".join(f"{t} in {ex.where} ({ex.status})" for t, ex in hits),
                 *(ex for _, ex in hits))
    ctx.passed(f"no stack trace in {len(ctx.responses())} error response(s)")


def internal_references(ex: Exchange, own_host: str) -> list[str]:
    haystack = "\n".join(f"{k}: {v}" for k, v in ex.headers) + "\n" + ex.text
    found = []
    for match in IPV4.finditer(haystack):
        try:
            ip = ipaddress.ip_address(match.group(1))
        except ValueError:
            continue
        if (ip.is_private or ip.is_loopback or ip.is_link_local) and str(ip) != own_host:
            found.append(str(ip))
    found += [m.group(0) for m in INTERNAL_NAME.finditer(haystack) if m.group(0).lower() != own_host]
    if "localhost" not in own_host and re.search(r"\blocalhost\b", haystack, re.IGNORECASE):
        found.append("localhost")
    return list(dict.fromkeys(found))


def _internal_probes(settings: Settings, _subject: str) -> list[Probe]:
    return base_probes(settings) + odd_request_probes(settings)


@check("errors.no_internal_hosts", title="responses do not leak localhost, private IPs or internal hosts",
       severity="medium", probes=_internal_probes,
       remediation="Strip internal addresses from headers (Via, X-Backend-*), redirects and error pages.")
def no_internal_hosts(ctx: Context) -> None:
    own = (urlsplit(ctx.target.base_url).hostname or "").lower()
    hits = [(ex, refs) for ex in ctx.responses() if (refs := internal_references(ex, own))]
    if hits:
        ctx.fail("internal addresses in responses: " + "; ".join(
            f"{', '.join(refs[:5])} in {ex.where}" for ex, refs in hits), *(ex for ex, _ in hits))
    ctx.passed(f"no internal address in {len(ctx.responses())} response(s)")
