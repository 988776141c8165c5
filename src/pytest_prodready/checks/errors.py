"""errors.*: unknown paths get 404, malformed input gets 4xx, no stack traces, no internal hosts."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pytest_prodready import debugpages, schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import BODY_METHODS, base_probes, not_found_probe
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

MALFORMED_JSON = b'{"prodready": "malformed", '
# Query parameters frameworks and views commonly choke on: arrays and maps where a scalar is
# expected, invalid UTF-8, a negative limit, a NUL byte.
ODD_PARAMS = "id[]=1&id[a]=%ff&limit=-1&page=%00"
# A path segment that is a cut-off UTF-8 sequence: valid percent-escapes (so HTTP clients
# and proxies pass it on unchanged), invalid text once decoded. A router either fails to
# decode it itself (Express: "Failed to decode param") or hands it to the view, which fails
# to parse it as an id (int(), a lookup). In most frameworks the debug page shows only where
# something raises, so this is where to look.
RAISING_SEGMENT = "%E0%A4"
# What a browser sends: several frameworks choose HTML debug pages only for it (Starlette
# answers */* with a plain-text traceback and text/html with its debugger page).
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# errors.pages beyond this many are not probed (two requests each); the verdict says so.
MAX_PAGES = 20
# How many exposures a failure message lists (the report keeps every exchange).
LISTED_HITS = 6
_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-fA-F]{8,}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")
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


def with_odd_params(path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{ODD_PARAMS}"


def raising_path(path: str) -> str:
    """The path with its id segment (or, lacking one, a new last segment) made unparseable.

    '/items/1' -> '/items/%E0%A4' (the detail route, with an id it cannot parse);
    '/items' -> '/items/%E0%A4'; the query string is kept.
    """
    base, question, query = path.partition("?")
    segments = base.split("/")
    if not segments[-1] or _ID_SEGMENT.match(segments[-1]):
        segments[-1] = RAISING_SEGMENT
    else:
        segments.append(RAISING_SEGMENT)
    return "/".join(segments) + question + query


def page_probes(settings: Settings, endpoint: str) -> list[Probe]:
    """Two requests that make a page raise: odd parameters, and an unparseable path.

    Reads only (GET), except for an endpoint that takes a body: it gets malformed JSON,
    which a correct target refuses.
    """
    method, _, path = endpoint.partition(" ")
    if method in BODY_METHODS:
        return [malformed_probe(settings, f"{method} {path}"),
                malformed_probe(settings, f"{method} {raising_path(path)}")]
    return [Probe.get(with_odd_params(path)), Probe.get(raising_path(path), {"Accept": BROWSER_ACCEPT})]


def error_pages(settings: Settings) -> list[str]:
    """The endpoints of errors.pages that are probed (at most MAX_PAGES)."""
    return list(settings.get("errors.pages") or [])[:MAX_PAGES]


def odd_request_probes(settings: Settings) -> list[Probe]:
    """Requests a framework commonly chokes on: unknown paths, bad encodings, odd parameters,
    for the page and for each of errors.pages."""
    probes = [not_found_probe(), *page_probes(settings, f"GET {settings.get('page', '/')}"),
              Probe.get("/prodready-nonexistent-3f9c1a7e/%2e%2e%2f%c0%ae")]
    for endpoint in error_pages(settings):
        probes += page_probes(settings, endpoint)
    return list(dict.fromkeys(probes))


def _trace_probes(settings: Settings, _subject: str) -> list[Probe]:
    probes = odd_request_probes(settings) + [malformed_probe(settings, e) for e in json_endpoints(settings)]
    return list(dict.fromkeys(probes))


def find_debug_page(ex: Exchange) -> debugpages.Finding | None:
    """The framework debug page or stack trace in a response, if any (see debugpages)."""
    return debugpages.detect(ex.text, ex.header("Content-Type"))


def find_trace(ex: Exchange) -> str | None:
    """What the response exposes, named by framework and page ('Django technical 500 page
    (DEBUG = True)', 'Python traceback'), or None."""
    finding = find_debug_page(ex)
    return finding.label if finding else None


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
    responses = ctx.responses()
    hits = [(finding, ex) for ex in responses if (finding := find_debug_page(ex))]
    if hits:
        listed = "; ".join(f"{f.label} in {ex.where} ({ex.status})" for f, ex in hits[:LISTED_HITS])
        if len(hits) > LISTED_HITS:
            listed += f"; and {len(hits) - LISTED_HITS} more"
        first = hits[0][0]
        ctx.fail(f"stack traces or debug pages exposed: {listed}. First seen: \u201c{first.quote}\u201d",
                 *(ex for _, ex in hits))
    configured = len(ctx.settings.get("errors.pages") or [])
    skipped = (f"; errors.pages: only the first {MAX_PAGES} of {configured} probed"
               if configured > MAX_PAGES else "")
    ctx.passed(f"no stack trace in {len(responses)} error response(s){skipped}")


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
        # One entry per address, each place once: the odd-input probes of a page (same
        # path, another query) repeat its leak, and a place named twice reads as two findings.
        by_refs: dict[str, list[str]] = {}
        for ex, refs in hits:
            places = by_refs.setdefault(", ".join(refs[:5]), [])
            if ex.where not in places:
                places.append(ex.where)
        ctx.fail("internal addresses in responses: " + "; ".join(
            f"{refs} in {', '.join(places[:5])}" + (f" and {len(places) - 5} more" if len(places) > 5 else "")
            for refs, places in by_refs.items()), *(ex for ex, _ in hits))
    ctx.passed(f"no internal address in {len(ctx.responses())} response(s)")


FAMILY = Family(
    name="errors",
    # pages: more pages and routes the errors checks probe with odd input (debug pages
    # usually show only where something raises)
    config={"errors": schema.Table({"json_endpoints": schema.list_of(schema.endpoint),
                                    "pages": schema.list_of(schema.endpoint)})},
)
