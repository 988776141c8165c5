"""The renderers: the terminal's order and word-boundary cuts, Markdown that no target string
can turn into markup (checked with GitHub's cmark-gfm and with markdown-it + linkify), the
HTML report's escaping, the job-summary size limit."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm  # type: ignore[import-untyped]  # no stubs
import pytest
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pytest_prodready.report import render
from pytest_prodready.report.render import cut, html_page, markdown, md_code, plain, terminal
from tests.report.records import card_of, exchange, rec, tls_fact

# Target-controlled text that would be markup, a link or an image if rendered as is.
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(document.cookie)</script>",
    "<iframe src=https://other.host/frame></iframe> <svg onload=alert(1)>",
    "<a href='https://other.host/'>click</a> <details open><summary>x</summary>",
    "[click me](javascript:alert(1))",
    "[x](<javascript:alert(1)>) and [y]( javascript:alert(2) )",
    "![](http://other.host/x.png)",
    "![alt](//other.host/pixel.gif) ![a][ref]",
    "[ref]: https://other.host/ref",
    "see [ref] and [ref][] here",
    "<https://other.host/phish> and https://other.host/phish and HTTP://OTHER.HOST/X",
    "www.other-host.com/login and WWW.OTHER.COM",
    "mail admin@other.host now, or xmpp:bot@other.host, or mailto:a@other.host",
    "bare other.com and sub.other.host/path and пример.рф and //other.host/x",
    "`code` and ``double`` and ```` run ```` and a lone ` backtick`",
    "`[x](javascript:alert(1))` and ``![](http://other.host/a.png)``",
    "pipe | in | cell || and \\| escaped \\\\| double",
    "*bold* _em_ **strong** __strong__ ~~strike~~ ~single~ snake_case_name",
    "&lt;img src=x onerror=alert(1)&gt; &#60;script&#62; &amp;",
    "$\\color{red}{pwned}$ and $$x$$",
    "<!-- comment --> <?php ?> <![CDATA[x]]>",
    "\\<img src=x onerror=alert(1)\\> \\[x\\](javascript:alert(1))",
    "trailing backslash \\",
    "line\nbreak # heading\n- list\n> quote\n1. item\n===\n---",
    "a\u202eevil\u202c b\u200bc\ufeff\u2066d\u2069 e\u2028f\u2029g \u200e\u200f",
    "\x1b[31mred\x1b[0m \x07bell \x9bcsi \x1b]0;title\x07 nul\x00",
]
BIDI_AND_INVISIBLE = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                       *range(0x200B, 0x2010), 0x2028, 0x2029, 0xFEFF)]
# What our own Markdown emits; anything else in the rendered HTML came from a target.
OUR_TAGS = {"h1", "h2", "p", "strong", "code", "table", "thead", "tbody", "tr", "th", "td",
            "details", "summary", "pre"}


def cmark(text: str) -> str:
    """GitHub's own renderer (cmark-gfm, with its extensions), raw HTML allowed: what our
    escaping does, not what GitHub's sanitizer would clean up afterwards."""
    return str(cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE))


def markdown_it(text: str) -> str:
    """markdown-it with raw HTML on and linkify (bare URLs, www., e-mails, fuzzy domains)."""
    md = MarkdownIt("gfm-like", {"html": True, "linkify": True})
    return str(md.render(text))


RENDERERS = {"cmark-gfm": cmark, "markdown-it+linkify": markdown_it}


class Page(HTMLParser):
    """Tags, attributes, and the text of each table cell and <pre> of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.cells: list[str] = []
        self.pres: list[str] = []
        self.paragraphs: list[str] = []
        self._open: list[str] = []
        self._text: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag in ("td", "th", "pre", "p"):
            self._open.append(tag)
            self._text[tag] = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "pre", "p") and self._open and self._open[-1] == tag:
            self._open.pop()
            text = "".join(self._text.pop(tag))
            {"pre": self.pres, "p": self.paragraphs}.get(tag, self.cells).append(text)

    def handle_data(self, data: str) -> None:
        for tag in self._open:
            self._text[tag].append(data)


def parsed(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def hostile_card() -> Any:
    records = []
    for i, text in enumerate(HOSTILE):
        subject = f"/p{i}/{text}"
        records.append(rec(f"cors.c{i:02d}", "critical" if i % 2 else "high", "failed", subject,
                           message=text, remediation=f"fix {text}",
                           evidence=[exchange(headers=[["Server", text], ["X-Powered-By", "`" * 7]],
                                              body=f"{text}\n```\n</details>\n<script>x</script>",
                                              request_headers={"Origin": text})]))
    records.append(rec("tls.cert_valid", "critical", "error", message="cannot judge: <b>x</b>",
                       evidence=[tls_fact(subject="CN=<img src=x onerror=alert(1)>")]))
    records.append(rec("headers.referrer_policy", "low", "waived", "/",
                       waiver={"reason": HOSTILE[4], "expires": "2999-01-01", "active": True}))
    return card_of(records, profile="[p](javascript:alert(1))")


# -- cut ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("short", 10, "short"),
    ("the quick brown fox jumps", 12, "the quick…"),
    ("the quick brown fox jumps", 11, "the quick…"),
    ("the quick brown, fox", 17, "the quick brown…"),  # a trailing comma goes with the cut
    ("see https://example.com/very/long/path/to/a/resource?with=query", 40,
     "see https://example.com/very/long/path/…"),  # a long word is cut after a separator
    ("x" * 50, 10, "x" * 9 + "…"),  # one run of letters, no boundary anywhere: cut at the limit
    ("many   spaces\nand\tlines here", 100, "many spaces and lines here"),
])
def test_cut_examples(text: str, limit: int, expected: str) -> None:
    assert cut(text, limit) == expected


@given(words=st.lists(st.from_regex("[a-zA-Z0-9'\u2019().,:/-]{1,12}", fullmatch=True),
                      min_size=1, max_size=60),
       limit=st.integers(min_value=28, max_value=300))
def test_cut_never_splits_a_word_of_prose(words: list[str], limit: int) -> None:
    """Words of up to 12 characters (punctuation included): past 28 characters the last
    space always falls in the second half, so the cut is always at a space."""
    text = " ".join(words)
    out = cut(text, limit)
    assert len(out) <= limit
    if out == text:
        return
    assert out.endswith("…")
    kept = out[:-1]
    assert text.startswith(kept)
    rest = text[len(kept):].lstrip(",:")  # a separator before the space goes with the cut
    assert rest[:1] == " ", f"cut mid-word: {kept!r} | {text[len(kept):]!r}"


@given(text=st.text(min_size=1, max_size=400), limit=st.integers(min_value=2, max_value=200))
def test_cut_is_one_bounded_line_of_any_text(text: str, limit: int) -> None:
    out = cut(text, limit)
    assert len(out) <= limit
    assert "\n" not in out and "\x1b" not in out
    assert out == plain(text) or (out.endswith("…") and plain(text).startswith(out[:-1]))


# -- terminal ---------------------------------------------------------------------------------
def test_terminal_reads_verdict_grade_blockers_then_categories() -> None:
    records = [rec(c, "high", "failed", p, message=f"CORS: https://evil.example was echoed ({p}). "
                   + "Only allow listed origins in production, never reflect the request's Origin " * 4,
                   remediation="Only allow listed origins; see allowed_origins.")
               for c in ("cors.a", "cors.b") for p in ("/api/agents", "/api/chat")]
    records += [rec(f"tls.t{i}", "critical") for i in range(30)]
    records.append(rec("headers.no_version_disclosure", "low", "failed", "/", message="Server: nginx/1.18.0"))
    lines = terminal(card_of(records, fail_on="medium"))
    text = "\n".join(lines)
    assert lines[0] == "target: https://staging.example.com"
    assert lines[1] == ("verdict: NOT READY   score: 93/100   grade: C (score alone A; capped at C by "
                        "4 high failures (2 checks))   fail-on: medium")
    assert lines.index("blockers (2 checks, 4 findings):") < lines.index(
        "category     passed failed errors skipped waived score")
    assert "  HIGH     cors.a on /api/agents, /api/chat" in lines
    assert "  HIGH     cors.b on /api/agents, /api/chat" in lines
    assert text.count("fix: Only allow listed origins; see allowed_origins.") == 2
    message_lines = [line for line in lines if "was echoed" in line]
    assert len(message_lines) == 2  # one message per check, not per subject
    for line in message_lines:
        shown = line.strip()
        assert shown.endswith("…") and len(shown) <= render.MESSAGE_CHARS
        assert shown[-2].isalpha() or shown[-2] in ").'", shown  # a whole word before the ellipsis
    assert ("  LOW      headers.no_version_disclosure on /: Server: nginx/1.18.0" in lines)
    assert "below the fail-on gate (1, not failing the run):" in lines


def test_terminal_lists_many_subjects_compactly() -> None:
    records = [rec("auth.required", "critical", "failed", f"GET /api/{chr(97 + i)}") for i in range(12)]
    lines = terminal(card_of(records))
    assert "  CRITICAL auth.required on 12 subjects: GET /api/a, GET /api/b, GET /api/c, +9 more" in lines
    assert "blockers (1 check, 12 findings):" in lines


def test_terminal_shows_errors_as_cannot_judge_and_waivers() -> None:
    lines = terminal(card_of([
        rec("tls.cert_valid", "critical", "error", message="cannot judge: connection reset"),
        rec("cookies.flags", "high", "waived", waiver={"reason": "SEC-9", "expires": None, "active": True}),
    ]))
    assert "  CRITICAL tls.cert_valid (cannot judge)" in lines
    assert "  prodready::cookies.flags: SEC-9 (until no expiry)" in lines
    assert lines[1].startswith("verdict: NOT READY   score: 0/100   grade: F   ")  # no cap: an error


def test_terminal_carries_no_control_or_invisible_characters() -> None:
    text = "\n".join(terminal(hostile_card()))
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert not [c for c in BIDI_AND_INVISIBLE if c in text]


# -- Markdown -------------------------------------------------------------------------------
def test_md_code_spans_survive_any_backtick_run() -> None:
    for text in ("a`b", "``", "`start", "end`", "x ``` y", "plain"):
        page = parsed(cmark(f"| h |\n|---|\n| {md_code(text)} |\n"))
        assert page.cells[1] == text, (text, page.cells)


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_markdown_of_hostile_text_renders_no_markup_link_or_image(renderer: str) -> None:
    report = markdown(hostile_card())
    page = parsed(RENDERERS[renderer](report))
    tags = {tag for tag, _ in page.tags}
    assert tags <= OUR_TAGS, f"{renderer} rendered target markup: {sorted(tags - OUR_TAGS)}"
    for tag, attrs in page.tags:
        for name, value in attrs:
            assert not name.startswith("on") and name not in ("href", "src"), (tag, name, value)
            if name == "style":  # markdown-it's table column alignment, and nothing else
                assert re.fullmatch(r"text-align:(left|right|center)", value or ""), value
            assert "javascript" not in (value or "").lower()
    # The hostile text is shown, verbatim (controls and invisible characters removed), as text.
    for text in HOSTILE:
        assert plain(text) in page.cells, f"{renderer} altered {text!r}"
    check_cells = {cell for cell in page.cells if cell.startswith("prodready::cors.c")}
    for i, text in enumerate(HOSTILE):
        assert plain(f"prodready::cors.c{i:02d}[/p{i}/{text}]") in check_cells
    # The evidence is shown verbatim in fenced blocks no backtick run could close.
    evidence = "\n".join(page.pres)
    assert "<script>x</script>" in evidence and "</details>" in evidence
    assert "< X-Powered-By: " + "`" * 7 in evidence
    assert "certificate subject: CN=<img src=x onerror=alert(1)>" in evidence  # an error blocks too


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_markdown_blockers_table_is_one_row_per_check(renderer: str) -> None:
    records = [rec(c, "critical", "failed", p, message=f"echoed at {p} | see <b>x</b>",
                   remediation="Only allow listed origins; see allowed_origins.",
                   evidence=[exchange(f"https://staging.example.com{p}")])
               for c in ("cors.a", "cors.b", "cors.c") for p in ("/api/agents", "/api/chat")]
    report = markdown(card_of(records))
    assert "## Blockers (3 checks, 6 findings)" in report
    page = parsed(RENDERERS[renderer](report))
    row = page.cells.index("cors.a")
    assert page.cells[row - 1: row + 4] == [
        "critical", "cors.a", "/api/agents, /api/chat", "echoed at /api/agents | see <b>x</b>",
        "Only allow listed origins; see allowed_origins."]
    assert page.cells.count("cors.a") == 1  # one row in the blockers table
    assert len(page.pres) == 3  # the evidence of each check's first finding
    assert all(pre.startswith("> GET https://staging.example.com/api/agents\n") for pre in page.pres)


def test_markdown_carries_no_control_or_invisible_characters() -> None:
    report = markdown(hostile_card())
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", report)
    assert not [f"U+{ord(c):04X}" for c in BIDI_AND_INVISIBLE if c in report]


def test_markdown_keeps_under_the_job_summary_limit() -> None:
    body = "<p>" + "x" * 590 + "</p>"
    records = [rec(f"auth.r{i}", "critical", "failed", f"GET /api/{i}",
                   evidence=[exchange(body=body)]) for i in range(40)]
    records += [rec("auth.required", "low", "passed", f"GET /api/ok/{i}") for i in range(5000)]
    full = markdown(card_of(records), limit=10 * 1024 * 1024)
    assert len(full.encode()) > 300_000 and "## Evidence" in full
    small = markdown(card_of(records), limit=200_000)
    assert len(small.encode()) <= 200_000
    assert "## Blockers (40)" in small and "## Evidence" not in small
    assert small.rstrip().endswith("every check and its evidence._")
    page = parsed(cmark(small))
    assert "auth.r39" in page.cells  # the blockers are all there
    assert 1000 < sum(cell.startswith("prodready::auth.required") for cell in page.cells) < 5000
    assert len(markdown(card_of(records)).encode()) <= render.STEP_SUMMARY_LIMIT


def test_step_summary_is_appended_within_what_is_left(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step output\n", encoding="utf-8")
    card = card_of([rec("a.x", "high", "failed")])
    assert render.write_step_summary(card, {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step output\n# Production readiness: ❌ NOT READY")
    assert render.write_step_summary(card, {}) is None


# -- HTML ---------------------------------------------------------------------------------------
PAGE_TAGS = {"html", "head", "meta", "title", "style", "script", "body", "header", "section", "h1",
             "h2", "p", "code", "b", "span", "div", "a", "table", "thead", "tbody", "tr", "th", "td",
             "ul", "li", "details", "summary", "pre", "form", "label", "select", "option", "button",
             "dl", "dt", "dd"}
# Attributes whose values are ours alone (a fixed vocabulary or our own numbers).
OUR_VALUES = {"class": {"passed", "failed", "error", "skipped", "waived", "critical", "high", "medium",
                        "low", "ready", "not-ready", "big", "msg", "fix", "muted", "num", "bar", "mid",
                        "hist", "hist-axis", "score", "doc", "doc-ref",
                        "sev critical", "sev high", "sev medium", "sev low"},
              "data-outcome": {"passed", "failed", "error", "skipped", "waived"},
              "data-severity": {"critical", "high", "medium", "low"}}


def test_html_report_escapes_every_target_string() -> None:
    page_text = html_page(hostile_card())
    page = parsed(page_text)
    assert {tag for tag, _ in page.tags} <= PAGE_TAGS
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [[]]  # our one inline script (allowed by its hash in the page's CSP)
    for tag, attrs in page.tags:
        for name, value in attrs:
            assert not name.startswith("on") and name not in ("src", "srcdoc", "action"), (tag, name)
            if name in OUR_VALUES:
                assert value in OUR_VALUES[name], (tag, name, value)
            elif name == "href":
                assert re.fullmatch(r"#check-\d+|#doc-[a-z0-9_]+\.[a-z0-9_]+", value or ""), value
            elif name == "style":
                assert re.fullmatch(r"(width|height):\d+%", value or ""), value
            else:
                assert name in ("lang", "charset", "id", "http-equiv", "content", "name", "title",
                                "scope", "colspan", "hidden", "value", "type", "open",
                                "data-check", "data-category"), (tag, name, value)
    for text in HOSTILE:
        assert any(plain(text) in cell for cell in page.cells + page.paragraphs), text
    assert "<script>x</script>" in "\n".join(page.pres)
    assert "certificate subject: CN=<img src=x onerror=alert(1)>" in "\n".join(page.pres)
    assert not [f"U+{ord(c):04X}" for c in BIDI_AND_INVISIBLE if c in page_text]
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", page_text)


def test_html_report_shows_the_cap_and_the_grouped_blockers() -> None:
    records = [rec("cors.a", "high", "failed", p) for p in ("/x", "/y")] + [rec(f"t.{i}", "critical")
                                                                            for i in range(30)]
    page_text = html_page(card_of(records))
    assert '<span id="grade">C</span>' in page_text
    assert '<span id="grade-cap">score alone A; capped at C by 2 high failures (1 check)</span>' in page_text
    assert "<h2>Blockers (1 check, 2 findings)</h2>" in page_text
    assert page_text.count("<li class=\"high\" data-check=") == 1


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_the_renderers_do_obey_raw_hostile_text(renderer: str) -> None:
    """The renderers the tests use are not toothless: unescaped, the corpus is markup."""
    raw = "\n\n".join(HOSTILE)
    tags = {tag for tag, _ in parsed(RENDERERS[renderer](raw)).tags}
    assert {"a", "img", "svg", "em", "strong"} <= tags
    # GFM's tagfilter extension disarms <script> and <iframe> by itself; markdown-it does not.
    assert ("script" in tags) == (renderer == "markdown-it+linkify")


def test_categories_with_nothing_judged_share_one_line() -> None:
    """A run that configures a few families: the unconfigured ones are one line, not a
    table of zeros."""
    from pytest_prodready.report.render import terminal
    from pytest_prodready.report.scorecard import Scorecard

    def rec(check_id: str, outcome: str) -> dict[str, object]:
        return {"id": check_id, "nodeid": f"prodready::{check_id}", "category": check_id.split(".")[0],
                "severity": "high", "outcome": outcome, "message": "m", "remediation": "",
                "subject": "", "waiver": None, "duration_ms": 1.0, "evidence": []}

    card = Scorecard(target="https://x.example", records=[
        rec("headers.hsts", "passed"), rec("dns.spf", "skipped"), rec("jwt.alg_none_rejected", "skipped")])
    lines = terminal(card)
    assert any(line.startswith("headers ") for line in lines)
    assert not any(line.startswith(("dns ", "jwt ")) for line in lines)
    assert "not configured or nothing to judge: dns, jwt (see the skip reasons with -rs)" in lines
