"""The HTML scorecard in a real browser (Debian's headless Chromium): what a person sees
(verdict, category rows, a failing check's evidence opened), the filters working, and a
hostile target's `<script>`, event handlers, `javascript:` links and ANSI escapes shown as
text while nothing runs (a script that would retitle the page leaves the title alone)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.masking import strip_control
from pytest_prodready.report.render import html_page
from tests.report.records import card_of, exchange, rec, tls_fact

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# A missing browser is a failure, not a skip: scripts/install-test-deps.sh installs it.
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions", "--mute-audio"]
PWNED = "PWNED-by-target"
# What a hostile target sends: every one of these would change the title if it ran.
HOSTILE_TEXT = [
    f"<script>document.title='{PWNED}'</script>",
    f"<img src=x onerror=\"document.title='{PWNED}'\">",
    f"<svg onload=\"document.title='{PWNED}'\"></svg>",
    f"<a href=\"javascript:document.title='{PWNED}'\" id=\"jslink\">click</a>",
    f"\"><script>document.title='{PWNED}'</script><x a=\"",
    f"'><body onload=\"document.title='{PWNED}'\">",
    f"</pre></details></td></tr></table><script>document.title='{PWNED}'</script>",
    "\x1b[31mred\x1b[0m \x1b]0;terminal title\x07 \x1b[2J cleared \x9b31m csi",
]


def browser(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed: run scripts/install-test-deps.sh"
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=60, check=True)


def dom(path: Path, tmp_path: Path, fragment: str = "") -> str:
    """The document as Chromium rendered it, after its script ran."""
    return browser(path.as_uri() + fragment, tmp_path, "--dump-dom").stdout


class Dom(HTMLParser):
    """Elements of a dumped DOM: (tag, attrs) in order, and text by element id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text_of: dict[str, str] = {}
        self.title = ""
        self._stack: list[tuple[str, str | None]] = []
        self._buffers: dict[str, list[str]] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag in ("meta", "br", "img", "input", "link"):
            return
        self._stack.append((tag, a.get("id")))
        if a.get("id"):
            self._buffers[str(a["id"])] = []
        if tag == "title":
            self._buffers["<title>"] = []

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, element_id = self._stack.pop()
            if element_id:
                self.text_of[element_id] = "".join(self._buffers.pop(element_id))
            if open_tag == "title":
                self.title = "".join(self._buffers.pop("<title>"))
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for buffer in self._buffers.values():
            buffer.append(data)

    def by_id(self, element_id: str) -> dict[str, str | None]:
        return next(a for _, a in self.elements if a.get("id") == element_id)

    def rows(self, table_id: str) -> list[dict[str, str | None]]:
        # The rows of our tables carry their data-* attributes.
        key = "data-outcome" if table_id == "checks" else "data-category"
        return [a for tag, a in self.elements if tag == "tr" and key in a
                and (table_id == "checks") == ("data-outcome" in a)]


def sample_card() -> Any:
    origin_exchange = exchange(headers=[["Access-Control-Allow-Origin", "https://evil.example"]],
                               request_headers={"Origin": "https://evil.example"},
                               body='{"agents": []}')
    records = [rec("cors.unknown_origin_rejected", "critical", "failed", path,
                   message="the Origin https://evil.example was echoed in Access-Control-Allow-Origin",
                   remediation="Only allow listed origins.", evidence=[origin_exchange])
               for path in ("/api/agents", "/api/chat")]
    records += [
        rec("headers.hsts", "high", "failed", "/", message="no Strict-Transport-Security header",
            remediation="Send Strict-Transport-Security.", evidence=[exchange()]),
        rec("tls.cert_valid", "critical", "passed", message="certificate valid for 10 more days",
            evidence=[tls_fact()]),
        rec("headers.csp", "medium", "passed", "/"),
        rec("metrics.prometheus_valid", "medium", "skipped", message="not configured: set metrics.path"),
        rec("headers.referrer_policy", "low", "waived", "/",
            waiver={"reason": "legacy clients", "expires": "2999-01-01", "active": True}),
        rec("perf.latency_budget", "high", "failed", "GET /api/health",
            message="p95 412.0 ms over the budget of 200 ms", evidence=[latency_fact()]),
    ]
    return card_of(records)


def latency_fact() -> dict[str, Any]:
    """An evidence item shaped like perf's Distribution.to_dict()."""
    counts = [2, 9, 20, 11, 4, 1, 0, 0, 1, 2]
    return {"kind": "latency", "endpoint": "GET /api/health", "requests": 50, "warmup": 5,
            "concurrency": 4, "errors": 0, "error_rate": 0.0, "error_statuses": [],
            "percentile_method": "nearest-rank on raw samples", "p50_ms": 61.0, "p95_ms": 412.0,
            "p99_ms": 455.5, "min_ms": 12.0, "max_ms": 455.5, "mean_ms": 90.1,
            "samples_ms": [12.0] * 50,
            "histogram": [{"from_ms": 12.0 + 44.35 * i, "to_ms": 12.0 + 44.35 * (i + 1), "count": c}
                          for i, c in enumerate(counts)]}


@pytest.fixture(scope="module")
def sample_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(html_page(sample_card()), encoding="utf-8")
    return path


def test_the_rendered_page_shows_verdict_score_blockers_and_categories(
        sample_page: Path, tmp_path: Path) -> None:
    page = Dom(dom(sample_page, tmp_path))
    assert page.text_of["verdict"] == "NOT READY"
    assert page.by_id("summary")["class"] == "not-ready"
    assert page.text_of["grade"] == "F" and page.text_of["score"].isdigit()
    assert page.title.startswith("prodready: NOT READY")
    categories = [a["data-category"] for a in page.rows("categories")]
    assert categories == ["cors", "headers", "metrics", "perf", "tls"]
    assert "Blockers (3 checks, 4 findings)" in page.text_of["blockers-section"]
    blockers = [a for tag, a in page.elements if tag == "li" and "data-check" in a]
    assert [b["data-check"] for b in blockers] == ["cors.unknown_origin_rejected", "headers.hsts",
                                                   "perf.latency_budget"]
    assert "fix: Only allow listed origins." in page.text_of["blockers-section"]
    # Our script ran: the filters (hidden for a reader without JavaScript) are shown.
    assert "hidden" not in page.by_id("filters")
    assert page.text_of["shown"] == "8 of 8 checks shown"
    # Without a fragment no evidence is open, yet all of it is in the document.
    assert not any("open" in a for tag, a in page.elements if tag == "details")
    assert "< Access-Control-Allow-Origin: https://evil.example" in page.text_of["evidence-0"]
    # Each built-in check says what it takes to pass (its catalogue line).
    assert "passes when an unknown Origin is not echoed" in page.text_of["check-0"]


def test_a_failing_checks_evidence_opens_from_its_link(sample_page: Path, tmp_path: Path) -> None:
    page = Dom(dom(sample_page, tmp_path, "#check-0"))
    row = page.by_id("check-0")
    assert row["data-outcome"] == "failed"
    assert "open" in page.by_id("evidence-0")  # the row's <details>, opened by the script
    evidence = page.text_of["evidence-0"]
    assert "> GET https://staging.example.com/api/agents" in evidence
    assert "> Origin: https://evil.example" in evidence
    assert "< 200 OK" in evidence
    assert not any("open" in a for tag, a in page.elements
                   if tag == "details" and a.get("id") != "evidence-0")
    # And a screenshot is a real picture (looked at by hand when the page changes). Taken
    # at the top: headless Chromium paints a page scrolled to a fragment only in part.
    shot = tmp_path / "report.png"
    browser(sample_page.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_a_malformed_fragment_leaves_the_page_working(sample_page: Path, tmp_path: Path) -> None:
    page = Dom(dom(sample_page, tmp_path, "#%E0%A4%A"))
    assert page.text_of["shown"] == "8 of 8 checks shown"


def test_where_latency_checks_ran_the_page_draws_their_histograms(sample_page: Path, tmp_path: Path) -> None:
    page = Dom(dom(sample_page, tmp_path))
    table = page.text_of["latency"]
    assert "GET /api/health" in table and "412.0" in table and "455.5" in table
    bars = [a for tag, a in page.elements if tag == "span" and (a.get("style") or "").startswith("height:")]
    assert [b["style"] for b in bars] == [f"height:{round(100 * c / 20)}%" for c in (2, 9, 20, 11, 4, 1)] + [
        "height:0%", "height:0%", "height:5%", "height:10%"]
    # The check's own evidence shows the percentiles and a text histogram, not 50 raw samples.
    row = next(r for r in page.rows("checks") if r["data-category"] == "perf")
    evidence = page.text_of[str(row["id"]).replace("check-", "evidence-")]
    assert evidence.count("ms |") == 10 and "p95 412.0 ms" in evidence and "12.0, 12.0" not in evidence


def test_2000_findings_make_a_page_a_browser_still_opens(tmp_path: Path) -> None:
    from pytest_prodready.report import html as html_report

    body = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # ~10 KB a response
    card = card_of([rec(f"cors.c{i % 40}", "high", "failed", f"/api/{i}", evidence=[exchange(body=body)])
                    for i in range(2_000)])
    text = html_page(card)
    limit = html_report.PAGE_EVIDENCE_CHARS + html_report.CHECK_EVIDENCE_CHARS
    assert len(text.encode("utf-8")) < limit + 3_000_000  # the evidence budget plus the rows
    assert "in the JSON report (page size limit)" in text  # the checks past the budget say where
    # In the browser with a smaller budget (the same rows, less to parse).
    path = tmp_path / "big.html"
    path.write_text(html_report.page(card, evidence_chars=1_000_000), encoding="utf-8")
    page = Dom(dom(path, tmp_path))
    assert page.text_of["shown"] == "2000 of 2000 checks shown" and page.text_of["verdict"] == "NOT READY"


def test_filters_preset_from_the_fragment_hide_other_rows(sample_page: Path, tmp_path: Path) -> None:
    page = Dom(dom(sample_page, tmp_path, "#outcome=failed&severity=critical"))
    rows = page.rows("checks")
    shown = [r for r in rows if "hidden" not in r]
    assert [(r["data-outcome"], r["data-severity"]) for r in shown] == [("failed", "critical")] * 2
    assert len(rows) == 8
    assert page.text_of["shown"] == "2 of 8 checks shown"


def hostile_card() -> Any:
    records = []
    for i, text in enumerate(HOSTILE_TEXT):
        records.append(rec(f"headers.h{i}", "high", "failed", f"/p{i}/{text}", message=text,
                           remediation=f"fix {text}", category=f"cat{text}" if i == 0 else None,
                           evidence=[exchange(headers=[["Server", text]], body=f"body {text}",
                                              request_headers={"Origin": text})]))
    records.append(rec("tls.cert_valid", "critical", "error", message=HOSTILE_TEXT[1],
                       evidence=[tls_fact(subject=f"CN={HOSTILE_TEXT[0]}")]))
    return card_of(records, profile=HOSTILE_TEXT[3])


def assert_inert(page: Dom, raw: str) -> None:
    """Nothing of the target's ran or became an element."""
    assert PWNED not in page.title, page.title
    assert page.title.startswith("prodready: ")
    scripts = [a for tag, a in page.elements if tag == "script"]
    assert len(scripts) == 1  # ours
    assert not [tag for tag, _ in page.elements if tag in ("img", "svg", "iframe", "x")]
    for tag, attrs in page.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            assert "javascript:" not in (value or "").lower(), (tag, name, value)
            if name == "href":
                # only links inside the page: to a check's row or to its reference entry
                assert re.fullmatch(r"#check-\d+|#doc-[a-z0-9_]+\.[a-z0-9_]+", value or ""), value
    assert "jslink" not in [a.get("id") for _, a in page.elements]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", raw)


def test_hostile_text_is_shown_and_nothing_runs(tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(html_page(hostile_card()), encoding="utf-8")
    raw = dom(path, tmp_path, "#check-0")
    page = Dom(raw)
    assert_inert(page, raw)
    assert page.text_of["verdict"] == "NOT READY"
    # The hostile strings are there, as text (what a reader needs to see what was sent).
    evidence = page.text_of["evidence-0"]
    assert f"< Server: {HOSTILE_TEXT[0]}" in evidence
    # ANSI escapes are removed, the words around them kept; no escape reaches the page.
    ansi = page.text_of["evidence-7"]
    assert f"< Server: {strip_control(HOSTILE_TEXT[7])}" in ansi and "terminal title" not in ansi
    assert "\x1b" not in raw


# -- a real hostile target, end to end --------------------------------------------------------
class HostileHandler(BaseHTTPRequestHandler):
    """Answers everything with hostile headers and bodies."""

    def do_GET(self) -> None:
        body = ("<html><body>" + "\n".join(HOSTILE_TEXT) + "</body></html>").encode("utf-8", "replace")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server", f"nginx/1.2.3 <script>document.title='{PWNED}'</script>")
        self.send_header("X-Powered-By", f"<img src=x onerror=\"document.title='{PWNED}'\"> \x1b[31m")
        self.send_header("Access-Control-Allow-Origin", "javascript:alert(1)")
        self.end_headers()
        self.wfile.write(body)

    do_OPTIONS = do_GET
    do_HEAD = do_GET
    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_suite(url: str, cwd: Path, *reports: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRODREADY_") and k not in ("GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--prodready", "--prodready-url", url, "--prodready-only",
         "headers,errors,cors", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p",
         "no:benchmark", "--color=no", "-rA", *(f"--prodready-report={r}" for r in reports)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_hostile_targets_report_runs_nothing_and_the_terminal_is_clean(
        hostile_url: str, tmp_path: Path) -> None:
    run = run_suite(hostile_url, tmp_path, "out.html")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", run.stdout + run.stderr), \
        [line for line in run.stdout.splitlines() if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", line)][:5]
    report = tmp_path / "out.html"
    raw = dom(report, tmp_path, "#check-0")
    page = Dom(raw)
    assert_inert(page, raw)
    assert page.text_of["verdict"] == "NOT READY"
    text = "\n".join(page.text_of[k] for k in page.text_of if k.startswith("evidence-"))
    assert f"< Server: nginx/1.2.3 <script>document.title='{PWNED}'</script>" in text


def test_a_real_latency_measurement_is_drawn_from_its_own_samples(tmp_path: Path) -> None:
    """The histogram of a real perf.latency_budget run (a target adding 40 ms +- 5 ms, in its
    own process), rendered and read back from Chromium's DOM: one bar per bin, the bars'
    counts add up to the samples, and the p95 shown is the distribution's."""
    from pytest_prodready.checking import run_check
    from pytest_prodready.checks.perf import Distribution
    from pytest_prodready.target import Target
    from tests.targets.limiters import delayed

    with delayed(40, 5) as served, Target.from_url(
            served.url, latency={"/slow": {"requests": 60, "concurrency": 4}}) as target:
        result = run_check("perf.latency_budget", target, "GET /slow")
    dist = next(f for f in result.facts if isinstance(f, Distribution))
    fact = dist.to_dict()
    path = tmp_path / "latency.html"
    path.write_text(html_page(card_of([rec("perf.latency_budget", "high", result.outcome, "GET /slow",
                                           message=result.message, evidence=[fact])])), encoding="utf-8")
    page = Dom(dom(path, tmp_path))
    bars = [a for tag, a in page.elements if tag == "span" and (a.get("style") or "").startswith("height:")]
    assert len(bars) == len(fact["histogram"])
    counts = [int(str(b["title"]).rsplit(": ", 1)[1]) for b in bars]
    assert counts == [b["count"] for b in fact["histogram"]] and sum(counts) == len(dist.samples_ms) == 60
    assert f"{dist.p(95):.1f}" in page.text_of["latency"]
