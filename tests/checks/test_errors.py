"""errors.*: each check fails on a real target with the defect and passes on one without it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, Response

from pytest_prodready import debugpages
from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.common import NOT_FOUND_PATH
from pytest_prodready.checks.errors import (
    BROWSER_ACCEPT,
    MALFORMED_JSON,
    MAX_PAGES,
    ODD_PARAMS,
    RAISING_SEGMENT,
    raising_path,
)
from pytest_prodready.registry import get_check
from pytest_prodready.target import Target
from tests.targets.frameworks import (
    PAGES,
    express_site,
    fastapi_site,
    flask_site,
    python_module,
    serve_process,
)
from tests.targets.pool import served_pool, without_secrets
from tests.targets.webapp import VALID_TOKEN, Served, serve_app

CHAT = "POST /api/chat"


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[..., Served]]:
    """The webapp by defect set, one server per set for the whole module."""
    with served_pool() as get:
        yield get


# -- errors.not_found_is_404 --------------------------------------------------------------
def test_not_found_passes_on_404(app: Callable[..., Served],
                                 target_for: Callable[..., Target]) -> None:
    """An unknown path answered 404 passes."""
    result = run_check("errors.not_found_is_404", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == "unknown path answered 404"
    assert [urlsplit(ex.url).path for ex in result.exchanges] == [NOT_FOUND_PATH]


@pytest.mark.parametrize("defect", ["spa", "soft_404"])
def test_not_found_fails_on_soft_404(app: Callable[..., Served],
                                     target_for: Callable[..., Target], defect: str) -> None:
    """An SPA index or a JSON error with status 200 for an unknown path fails."""
    result = run_check("errors.not_found_is_404", target_for(app(defect)))
    assert result.outcome == "failed"
    assert result.message == "an unknown path answered 200, expected 404"
    assert NOT_FOUND_PATH in result.detail and "< 200 OK" in result.detail


# -- errors.malformed_input_is_4xx --------------------------------------------------------
def test_malformed_input_passes_on_400(app: Callable[..., Served],
                                       target_for: Callable[..., Target]) -> None:
    """Malformed JSON sent with the configured token gets 400: passes."""
    served = app()
    result = run_check("errors.malformed_input_is_4xx", target_for(served), CHAT)
    assert result.outcome == "passed", result.detail
    assert result.message == "malformed JSON answered 400"
    [exchange] = result.exchanges
    assert exchange.method == "POST" and exchange.request_body == MALFORMED_JSON
    # The token reached the target, so the body really reached the parser...
    assert any(s.path == "/api/chat" and s.headers.get("Authorization") == f"Bearer {VALID_TOKEN}"
               for s in served.log)
    # ...but the recorded evidence holds it masked.
    assert dict(exchange.request_headers)["Authorization"] == "Bearer ****"


@pytest.mark.parametrize(("defect", "status"), [("stack_trace", 500), ("malformed_200", 200)])
def test_malformed_input_fails_on_500_and_on_200(
        app: Callable[..., Served], target_for: Callable[..., Target], defect: str,
        status: int) -> None:
    """Malformed JSON answered 500 (crash) or 200 (accepted) fails, with the status in words."""
    result = run_check("errors.malformed_input_is_4xx", target_for(app(defect)), CHAT)
    assert result.outcome == "failed"
    assert result.message == f"malformed JSON to {CHAT} answered {status}, expected 400 or 422"
    assert f"< {status}" in result.detail
    assert '> {"prodready": "malformed", ' in result.detail  # the request that was sent
    assert VALID_TOKEN not in result.detail


def test_malformed_input_401_without_token_is_skipped(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """With no token configured the endpoint refuses before parsing: skipped, naming auth.token_env."""
    with without_secrets(target_for(app(), auth={}), "auth.token_env") as target:
        result = run_check("errors.malformed_input_is_4xx", target, CHAT)
    assert result.outcome == "skipped"
    assert "refused the call (401) before parsing the body" in result.message
    assert "set auth.token_env" in result.message
    assert "Authorization" not in dict(result.exchanges[0].request_headers)


def test_malformed_input_401_with_a_wrong_token_says_so(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A configured token that is refused is named as the problem, not as missing config."""
    base = target_for(app())
    settings = replace(base.settings, secrets={"auth.token_env": "tok-not-the-right-one"})
    with Target(settings) as target:
        result = run_check("errors.malformed_input_is_4xx", target, CHAT)
    assert result.outcome == "skipped"
    assert "refused the token from auth.token_env (401)" in result.message
    assert "tok-not-the-right-one" not in result.message


@pytest.mark.parametrize(("endpoint", "status"), [("POST /api/nope", 404),
                                                  ("POST /api/agents", 405)])
def test_malformed_input_wrong_endpoint_fails_with_hint(
        app: Callable[..., Served], target_for: Callable[..., Target], endpoint: str,
        status: int) -> None:
    """An endpoint that does not exist or takes no POST fails, pointing at the setting."""
    result = run_check("errors.malformed_input_is_4xx", target_for(app()), endpoint)
    assert result.outcome == "failed"
    assert result.message == (f"{endpoint} answered {status}: check the endpoint in "
                              "errors.json_endpoints")


def test_malformed_input_not_configured_is_skipped(app: Callable[..., Served],
                                                   target_for: Callable[..., Target]) -> None:
    """No JSON endpoints (none configured, no POST in protected): skipped, naming the key."""
    target = target_for(app(), errors={}, protected=["GET /api/agents"])
    result = run_check("errors.malformed_input_is_4xx", target)
    assert result.outcome == "skipped"
    assert "errors.json_endpoints" in result.message
    assert not result.exchanges


def test_malformed_input_endpoints_default_to_protected_posts(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """Without errors.json_endpoints, the POST endpoints in protected are the subjects."""
    from pytest_prodready.registry import get_check

    target = target_for(app("stack_trace"), errors={})
    assert get_check("errors.malformed_input_is_4xx").subjects_for(target.settings) == [CHAT]
    assert run_check("errors.malformed_input_is_4xx", target, CHAT).outcome == "failed"


# -- errors.no_stack_traces ---------------------------------------------------------------
def test_no_stack_traces_passes_on_clean_errors(app: Callable[..., Served],
                                                target_for: Callable[..., Target]) -> None:
    """Unknown paths, odd parameters and malformed JSON give clean errors: passes."""
    result = run_check("errors.no_stack_traces", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"no stack trace in {len(result.exchanges)} error response(s)"
    assert {ex.method for ex in result.exchanges} == {"GET", "POST"}


def test_no_stack_traces_fails_on_python_traceback(app: Callable[..., Served],
                                                   target_for: Callable[..., Target]) -> None:
    """A 500 with a Python traceback for malformed JSON fails, with the trace as evidence."""
    result = run_check("errors.no_stack_traces", target_for(app("stack_trace")))
    assert result.outcome == "failed"
    assert result.message == ("stack traces or debug pages exposed: Python traceback in POST /api/chat "
                              "(500). First seen: \u201cTraceback (most recent call last): File "
                              '"/srv/app/views.py", line 42, in chat\u201d')
    assert "Traceback (most recent call last)" in result.detail
    assert 'File "/srv/app/views.py", line 42' in result.detail
    assert [ex.status for ex in result.exchanges] == [500]


# -- errors.no_internal_hosts -------------------------------------------------------------
def test_no_internal_hosts_passes_on_clean_responses(app: Callable[..., Served],
                                                     target_for: Callable[..., Target]) -> None:
    """The clean target passes; its own loopback address is not an internal leak."""
    result = run_check("errors.no_internal_hosts", target_for(app()))
    assert result.outcome == "passed", result.detail
    assert result.message == f"no internal address in {len(result.exchanges)} response(s)"


def test_no_internal_hosts_fails_on_private_backend_header(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """A header naming a private backend address fails, naming the address and where."""
    result = run_check("errors.no_internal_hosts", target_for(app("internal_host")))
    assert result.outcome == "failed"
    # one address, each place named once (the odd-input probes of / add no second "GET /")
    assert result.message.startswith("internal addresses in responses: 10.0.3.7 in GET /, ")
    assert result.message.count("GET /,") == 1 and result.message.endswith(" more")
    assert "< X-Backend-Server: 10.0.3.7:8080" in result.detail


def test_no_internal_hosts_fails_on_internal_host_name(
        app: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """An internal host name (db.internal) in a response body fails."""
    result = run_check("errors.no_internal_hosts", target_for(app("secret_leak")))
    assert result.outcome == "failed"
    assert result.message == "internal addresses in responses: db.internal in GET /api/health"


# -- errors.no_stack_traces against the real frameworks -----------------------------------
# Each framework serves the same three routes (tests/targets/frameworks): debug on is the
# defect, debug off the fix. The config names the two pages; the check finds the raising
# requests by itself (odd parameters, an unparseable id).
ITEM = f"GET /items/{RAISING_SEGMENT}"
SEARCH = "GET /search"


def django_site(debug: bool) -> AbstractContextManager[str]:
    return serve_process(python_module("tests.targets.frameworks.django_site",
                                       *(["--debug"] if debug else [])))


def express(debug: bool) -> AbstractContextManager[str]:
    return express_site.serve("development" if debug else "production")


SERVERS: dict[str, Callable[[bool], AbstractContextManager[str]]] = {
    "django": django_site, "flask": flask_site.serve, "fastapi": fastapi_site.serve, "express": express,
}
# What each framework's debug mode exposes, as the failure message names it.
DEBUG_HITS = {
    "django": [f"Django technical 404 page (DEBUG = True) in GET {NOT_FOUND_PATH} (404)",
               f"Django technical 500 page (DEBUG = True) in {ITEM} (500)",
               f"Django technical 500 page (DEBUG = True) in {SEARCH} (500)"],
    "flask": [f"Flask/Werkzeug interactive debugger (debug mode) in {ITEM} (500)",
              f"Flask/Werkzeug interactive debugger (debug mode) in {SEARCH} (500)"],
    "fastapi": [f"Starlette/FastAPI debug traceback page (debug=True) in {ITEM} (500)",
                f"Starlette/FastAPI debug traceback (debug=True, plain text) in {SEARCH} (500)"],
    # Express's router itself fails to decode the id: a 400, with the stack all the same.
    "express": [f"Express development error page (NODE_ENV is not production) in {ITEM} (400)",
                f"Express development error page (NODE_ENV is not production) in {SEARCH} (500)"],
}


@pytest.fixture(scope="module")
def framework() -> Iterator[Callable[[str, bool], str]]:
    """framework('django', True) -> the URL of that framework with debug on (one per module)."""
    urls: dict[tuple[str, bool], str] = {}
    with ExitStack() as stack:

        def get(name: str, debug: bool) -> str:
            if (name, debug) not in urls:
                urls[name, debug] = stack.enter_context(SERVERS[name](debug))
            return urls[name, debug]

        yield get


def check_pages(url: str, pages: list[str] | None = None, **values: Any) -> Result:
    """errors.no_stack_traces against `url`, as `prodready check URL` runs it, plus errors.pages."""
    with Target.from_url(url, errors={"pages": PAGES if pages is None else pages}, **values) as target:
        return run_check("errors.no_stack_traces", target)


def status_of(result: Result, path: str) -> int | None:
    [status] = {ex.status for ex in result.exchanges if urlsplit(ex.url).path == path}
    return status


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_framework_debug_mode_fails(framework: Callable[[str, bool], str], name: str) -> None:
    """Debug on: the framework's own debug page, named with the framework and the setting."""
    result = check_pages(framework(name, True))
    assert result.outcome == "failed", result.message
    assert result.message.startswith("stack traces or debug pages exposed: ")
    for hit in DEBUG_HITS[name]:
        assert hit in result.message
    assert "First seen: \u201c" in result.message
    # Only the exposing responses are evidence: the clean 200s are not.
    assert all(ex.status != 200 for ex in result.exchanges)


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_framework_without_debug_passes(framework: Callable[[str, bool], str], name: str) -> None:
    """Debug off: the same views raise on the same requests (500), with plain error pages."""
    result = check_pages(framework(name, False))
    assert result.outcome == "passed", result.detail
    assert result.message == f"no stack trace in {len(result.exchanges)} error response(s)"
    # The pass means something: the probes did reach code that raised.
    assert status_of(result, f"/items/{RAISING_SEGMENT}") == (400 if name == "express" else 500)
    assert status_of(result, "/search") == 500


def test_django_technical_404_with_a_typographic_apostrophe(framework: Callable[[str, bool], str]) -> None:
    """Django's technical 404 alone (no pages configured) fails: the issue's missed case."""
    result = check_pages(framework("django", True), pages=[])
    assert result.outcome == "failed"
    assert f"Django technical 404 page (DEBUG = True) in GET {NOT_FOUND_PATH} (404)" in result.message
    # The page says "You\u2019re" (U+2019) in HTML; the quote reads it folded to ASCII.
    assert "You're seeing this error because you have DEBUG = True in your Django settings file" \
        in result.message
    page = next(ex for ex in result.exchanges if urlsplit(ex.url).path == NOT_FOUND_PATH)
    assert "You\u2019re seeing this error because you have <code>DEBUG = True</code>" in page.text
    assert "Using the URLconf defined in" in page.text


def test_django_without_debug_404_passes(framework: Callable[[str, bool], str]) -> None:
    result = check_pages(framework("django", False), pages=[])
    assert result.outcome == "passed", result.detail
    assert status_of(result, NOT_FOUND_PATH) == 404


def test_starlette_chooses_html_or_text_by_accept(framework: Callable[[str, bool], str]) -> None:
    """The raising path is asked for like a browser (HTML page), the odd parameters like an
    API client (plain-text traceback): both forms of Starlette's debug output are seen."""
    result = check_pages(framework("fastapi", True))
    by_path = {urlsplit(ex.url).path: ex for ex in result.exchanges}
    html_page, plain = by_path[f"/items/{RAISING_SEGMENT}"], by_path["/search"]
    assert dict(html_page.request_headers)["Accept"] == BROWSER_ACCEPT
    assert "<title>Starlette Debugger</title>" in html_page.text
    assert (plain.header("Content-Type") or "").startswith("text/plain")
    assert plain.text.startswith("Traceback (most recent call last):")


def test_express_stack_is_html_with_nbsp(framework: Callable[[str, bool], str]) -> None:
    """finalhandler's development page: the stack as HTML, which a plain-text pattern misses."""
    result = check_pages(framework("express", True))
    page = next(ex for ex in result.exchanges if urlsplit(ex.url).path == "/search")
    assert "<br> &nbsp; &nbsp;at " in page.text
    assert "\n    at " not in page.text
    assert "\n    at " in debugpages.normalise(page.text, page.header("Content-Type"))


@pytest.mark.parametrize(("debug", "outcome"), [(True, "failed"), (False, "passed")],
                         ids=["development", "production"])
def test_express_json_error_with_escaped_stack(framework: Callable[[str, bool], str], debug: bool,
                                               outcome: str) -> None:
    """A JSON error body whose stack's newlines are the two characters \\n is read as lines."""
    result = check_pages(framework("express", debug), pages=["GET /api/items/1"])
    assert result.outcome == outcome, result.message
    if debug:
        assert f"Node.js stack trace in GET /api/items/{RAISING_SEGMENT} (400)" in result.message
        [ex] = [ex for ex in result.exchanges if ex.url.endswith(f"/api/items/{RAISING_SEGMENT}")]
        assert '"stack":"URIError: Failed to decode param' in ex.text and "\\n    at " in ex.text
    else:
        assert status_of(result, f"/api/items/{RAISING_SEGMENT}") == 400


# -- recorded pages of the frameworks that do not run here --------------------------------
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "debugpages"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))["pages"]


@pytest.fixture(scope="module")
def corpus_url() -> Iterator[str]:
    """A real server answering /corpus/<file> with the page, its status and Content-Type."""
    app = Flask("corpus")
    entries = {entry["file"]: entry for entry in MANIFEST}

    @app.route("/corpus/<name>")
    def page(name: str) -> Response:
        entry = entries[name]
        return Response((CORPUS / name).read_bytes(), entry["status"],
                        headers={"Content-Type": entry["content_type"]})

    with serve_app(app) as url:
        yield url


def test_the_manifest_lists_every_recorded_page() -> None:
    assert sorted(e["file"] for e in MANIFEST) == sorted(
        p.name for p in CORPUS.iterdir() if p.name not in ("manifest.json", "README.md"))
    labels = {s.label for s in debugpages.SIGNATURES}
    assert {e["expect"] for e in MANIFEST if e["expect"]} <= labels


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_recorded_page(corpus_url: str, entry: dict[str, Any]) -> None:
    """Each debug page fails, named by its signature; each ordinary page of the same
    framework passes."""
    path = f"/corpus/{entry['file']}"
    with Target.from_url(corpus_url, page=path) as target:
        result = run_check("errors.no_stack_traces", target)
    if entry["expect"]:
        assert result.outcome == "failed", result.message
        assert f"{entry['expect']} in GET {path} ({entry['status']})" in result.message
    else:
        assert result.outcome == "passed", result.detail
        assert status_of(result, path) == entry["status"]


# -- the normaliser -----------------------------------------------------------------------
def test_normalise_html_breaks_entities_and_typography() -> None:
    text = debugpages.normalise("<pre>Error: boom<br> &nbsp; &nbsp;at f (/srv/a.js:1:2)</pre>"
                                "<p>You\u2019re \u201cdone\u201d&#8230;</p>", "text/html")
    assert "Error: boom\n    at f (/srv/a.js:1:2)" in text
    assert 'You\'re "done"...' in text


def test_normalise_decodes_json_strings_in_pages_and_bodies() -> None:
    script = '<script>window.__DATA__ = {"err":{"stack":"Error: boom\\n    at f (/srv/a.js:1:2)"}}</script>'
    assert "Error: boom\n    at f (/srv/a.js:1:2)" in debugpages.normalise(script, "text/html")
    body = json.dumps({"error": "boom", "stack": "Error: boom\n    at f (/srv/a.js:1:2)"})
    assert "stack: Error: boom\n    at f (/srv/a.js:1:2)" in debugpages.normalise(body, "application/json")


def test_plain_text_is_not_stripped_as_html() -> None:
    """A Java frame's <init> and a Python frame's <module> survive in a plain-text body."""
    trace = 'Traceback (most recent call last):\n  File "/srv/app.py", line 1, in <module>\n'
    assert "<module>" in debugpages.normalise(trace, "text/plain")
    finding = debugpages.detect(trace, "text/plain")
    assert finding is not None and finding.label == "Python traceback"


@pytest.mark.parametrize("body", [
    "\n" * 2**18, '"' + '\\"' * 2**17, "\\\n\"" * 2**16, '{"a":"' + "\\n" * 2**17 + '"}',
    "Traceback (most recent call last):" + " \n" * 2**17, "Error x\n    at " * 2**14, "<style>" * 2**15,
], ids=["newlines", "escaped-quotes", "backslash-newline", "json-newlines", "traceback-blank",
        "at-lines", "unclosed-style"])
def test_detect_stays_linear_on_hostile_bodies(body: str) -> None:
    """A quarter-megabyte body built to make a backtracking pattern quadratic is judged in
    well under a second (quadratic would take hours). Not a benchmark: a guard."""
    import time

    start = time.monotonic()
    for content_type in ("text/html", "text/plain"):
        debugpages.detect(body, content_type)
    assert time.monotonic() - start < 5


# -- the probes of errors.pages -----------------------------------------------------------
@pytest.mark.parametrize(("path", "expected"), [
    ("/items/1", f"/items/{RAISING_SEGMENT}"),
    ("/items/5f2c9a1e7b", f"/items/{RAISING_SEGMENT}"),
    ("/items", f"/items/{RAISING_SEGMENT}"),
    ("/items/", f"/items/{RAISING_SEGMENT}"),
    ("/", f"/{RAISING_SEGMENT}"),
    ("/search?q=shoes", f"/search/{RAISING_SEGMENT}?q=shoes"),
])
def test_raising_path(path: str, expected: str) -> None:
    assert raising_path(path) == expected


def test_page_probes_are_passive_and_bounded() -> None:
    """GET pages get two GETs; a page that takes a body gets malformed JSON, which must be
    refused; past MAX_PAGES pages nothing more is sent."""
    pages = ["POST /api/chat", "HEAD /health", *(f"GET /items/{i}" for i in range(30))]
    with Target.from_url("http://127.0.0.1:9", errors={"pages": pages}) as target:
        probes = get_check("errors.no_stack_traces").probes_for(target.settings, "")
    assert len(probes) <= 3 + 2 + 2 * MAX_PAGES
    assert {p.method for p in probes} == {"GET", "POST"}
    assert all(p.body == MALFORMED_JSON for p in probes if p.method == "POST")
    assert {p.path for p in probes if p.method == "POST"} == {"/api/chat", f"/api/chat/{RAISING_SEGMENT}"}
    assert f"/health?{ODD_PARAMS}" in {p.path for p in probes}
    assert f"/items/{MAX_PAGES - 3}?{ODD_PARAMS}" in {p.path for p in probes}
    assert not any(p.path.startswith(f"/items/{MAX_PAGES - 2}?") for p in probes)


def test_pages_past_the_cap_are_named_in_the_verdict(framework: Callable[[str, bool], str]) -> None:
    pages = [f"GET /items/{i}" for i in range(MAX_PAGES + 5)]
    result = check_pages(framework("flask", False), pages=pages)
    assert result.outcome == "passed", result.detail
    assert result.message.endswith(f"; errors.pages: only the first {MAX_PAGES} of {MAX_PAGES + 5} probed")
