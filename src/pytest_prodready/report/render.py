"""Scorecard renderers: terminal text, Markdown (CI job summaries), JSON and HTML.

Everything a target controls (messages, subjects, header values, body excerpts, node ids
of checks on configured subjects) is text to show, never markup to obey:
- every string passes through `masking.strip_control` (escape sequences, C0/C1 controls,
  bidi and zero-width characters) before any renderer sees it;
- Markdown: punctuation that could start markup is backslash-escaped, and any word that
  a renderer could turn into a link (`https://…`, `//host`, `www.…`, `a@b`, `scheme:x`,
  `host.tld`) is shown as inline code, whose fence is longer than any backtick run inside;
  evidence goes in fenced blocks fenced the same way. No target string can become a link,
  an image, HTML or emphasis (tests/report/test_render.py feeds the output to GitHub's
  cmark-gfm and to markdown-it with linkify on);
- HTML: `html.escape(..., quote=True)` on every string, in text and attributes.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_prodready.masking import strip_control
from pytest_prodready.report.scorecard import Scorecard

FORMATS = (".json", ".md", ".html", ".sarif")
# GitHub refuses a job summary over 1 MiB per step ($GITHUB_STEP_SUMMARY).
STEP_SUMMARY_LIMIT = 1024 * 1024
ELLIPSIS = "…"

# Terminal widths: what a person reads in a CI log without scrolling sideways for ever.
MESSAGE_CHARS = 200
FIX_CHARS = 240
BELOW_GATE_CHARS = 120
SUBJECT_CHARS = 60
SUBJECTS_SHOWN = 3
# Markdown cells (a table row is one line: keep the table readable).
MD_MESSAGE_CHARS = 300
MD_SUBJECTS_SHOWN = 10
EVIDENCE_LINES = 80


# -- text -------------------------------------------------------------------------------------
def plain(text: object) -> str:
    """One line of displayable text: controls stripped, whitespace runs made one space."""
    return " ".join(strip_control(str(text)).split())


# Where a word too long to keep whole may still be cut without splitting a word in the
# middle of its letters: after a path, query or list separator.
_BREAKS = re.compile(r"[/&?=,;:.)\]}>-](?=[^/&?=,;:.)\]}>-])")


def cut(text: object, limit: int) -> str:
    """At most `limit` characters on one line, cut only at a word boundary, with '…'.

    The last whole word that fits is kept. When that would keep less than half the limit
    (a long URL or token follows), the cut may fall after a separator inside the long word
    instead (`/`, `&`, `=`, `,`, `.`...). Only text with neither a space nor a separator in
    its first `limit` characters (one base64 blob) is cut where the limit falls."""
    text = plain(text)
    if len(text) <= limit:
        return text
    room = text[:max(limit - 1, 1)]
    if text[len(room)] == " ":
        return room.rstrip(" ,;:") + ELLIPSIS
    space = room.rfind(" ")
    if space < limit // 2:
        # Keeping only the few words before a long one would hide nearly everything.
        space = max([space, *(m.end() for m in _BREAKS.finditer(text, 0, len(room) + 1))])
    if space > 0:
        return room[:space].rstrip(" ,;:") + ELLIPSIS
    return room + ELLIPSIS


def _score(value: int | None) -> str:
    return "-" if value is None else str(value)


def _grade_text(card: Scorecard) -> str:
    cap = card.grade_cap
    if cap is None:
        return card.grade
    return f"{card.grade} (score alone {card.raw_grade}; {cap['reason']})"


def _count(groups: list[dict[str, Any]]) -> str:
    findings = sum(g["count"] for g in groups)
    if findings == len(groups):
        return str(findings)
    return f"{len(groups)} check{'s' if len(groups) != 1 else ''}, {findings} findings"


def _label(group: dict[str, Any]) -> str:
    return str(group["id"]) + (" (cannot judge)" if group["outcome"] == "error" else "")


# -- terminal ---------------------------------------------------------------------------------
def _subjects_text(subjects: list[str], shown: int = SUBJECTS_SHOWN) -> str:
    if not subjects:
        return ""
    names = [cut(s, SUBJECT_CHARS) for s in subjects[:shown]]
    if len(subjects) > shown:
        return f" on {len(subjects)} subjects: {', '.join(names)}, +{len(subjects) - shown} more"
    return " on " + ", ".join(names)


def terminal(card: Scorecard) -> list[str]:
    """What a person reads first: verdict, score and grade, the blockers and their fixes;
    then the category table, what is below the gate, what is waived."""
    lines = [f"target: {plain(card.target)}" + (f"   profile: {plain(card.profile)}" if card.profile else ""),
             f"verdict: {card.verdict}   score: {_score(card.score)}/100   grade: {_grade_text(card)}   "
             f"fail-on: {card.fail_on}"]
    groups = card.blocker_groups
    if groups:
        lines += ["", f"blockers ({_count(groups)}):"]
        for g in groups:
            lines.append(f"  {g['severity'].upper():<8} {plain(_label(g))}{_subjects_text(g['subjects'])}")
            lines.append(f"           {cut(g['message'], MESSAGE_CHARS)}")
            if g["remediation"]:
                lines.append(f"           fix: {cut(g['remediation'], FIX_CHARS)}")
    lines += ["", f"{'category':<12} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7} "
                  f"{'waived':>6} {'score':>5}"]
    idle = []
    for row in card.categories():
        if row["skipped"] and not (row["passed"] or row["failed"] or row["error"] or row["waived"]):
            idle.append(plain(row["name"]))  # nothing judged: one line for all of them below
            continue
        lines.append(f"{plain(row['name']):<12} {row['passed']:>6} {row['failed']:>6} {row['error']:>6} "
                     f"{row['skipped']:>7} {row['waived']:>6} {_score(row['score']):>5}")
    if idle:
        lines.append(f"not configured or nothing to judge: {', '.join(idle)} (see the skip reasons "
                     "with -rs)")
    below = card.below_gate_groups
    if below:
        lines += ["", f"below the fail-on gate ({_count(below)}, not failing the run):"]
        lines += [f"  {g['severity'].upper():<8} {plain(_label(g))}{_subjects_text(g['subjects'])}: "
                  f"{cut(g['message'], BELOW_GATE_CHARS)}" for g in below]
    if card.waived:
        lines += ["", f"waived ({len(card.waived)}):"]
        for r in card.waived:
            waiver = r.get("waiver") or {}
            reason = cut(waiver.get("reason") or r["message"], MESSAGE_CHARS)
            lines.append(f"  {plain(r['nodeid'])}: {reason} "
                         f"(until {plain(waiver.get('expires') or 'no expiry')})")
    return lines


# -- Markdown ---------------------------------------------------------------------------------
# ASCII punctuation that can open or close inline Markdown (CommonMark + GFM + GitHub's
# math): emphasis, code, links and images (no '[', no '(' can follow one), HTML and
# entities, table cells, strikethrough, math. Backslash-escaping them is valid CommonMark.
# Target text is only ever placed inline (in table cells, after our own text), never at the
# start of a line, so the block markers (#, -, +, =, >, 1.) have nothing to start.
_MD_SPECIAL = frozenset("\\`*_[]<>&|~$")
# A word some renderer would make a link of: a scheme or protocol-relative URL, www.,
# an e-mail or xmpp address, 'scheme:anything', or a bare host with a TLD-looking tail
# (markdown-it's linkify; GitHub links only the first three). Such words become code.
_LINKISH = re.compile(r"//|@|\bwww\.|[A-Za-z][A-Za-z0-9+.-]*:\S|[^\W_]\.[^\W\d_]{2}", re.IGNORECASE)


def md_escape(text: str) -> str:
    """Inline text whose every markup-significant character is backslash-escaped."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def md_code(text: str) -> str:
    """An inline code span showing `text` verbatim (one line), however many backticks it has."""
    text = plain(text)
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _spaced_code(part: str) -> str:
    # A code span trims its padding: spaces around the part are kept outside it.
    return (" " if part[:1] == " " else "") + md_code(part) + (" " if part[-1:] == " " else "")


def md_literal(text: object) -> str:
    """Inline code that is also safe in a table cell: pipes stay outside the spans."""
    return "\\|".join(_spaced_code(part) for part in plain(text).split("|"))


def _md_word(word: str) -> str:
    return "\\|".join(md_code(part) if _LINKISH.search(part) else md_escape(part)
                      for part in word.split("|"))


def md_text(text: object, limit: int | None = None) -> str:
    """Prose (a message, a fix) as inert inline Markdown on one line, cut at a word
    boundary. For inline positions only (a table cell, after other text)."""
    line = cut(text, limit) if limit else plain(text)
    return " ".join(_md_word(word) for word in line.split(" "))


def _md_subjects(subjects: list[str]) -> str:
    shown = ", ".join(md_literal(s) for s in subjects[:MD_SUBJECTS_SHOWN])
    more = len(subjects) - MD_SUBJECTS_SHOWN
    return shown + (f", and {more} more" if more > 0 else "")


def md_fence(lines: Iterable[str], info: str = "text") -> list[str]:
    """A fenced code block showing `lines` verbatim: its fence is longer than any backtick
    run inside, so no line can close it."""
    body = [strip_control(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *body, fence]


def evidence_lines(evidence: Iterable[Mapping[str, Any]], limit: int = EVIDENCE_LINES) -> list[str]:
    """A readable transcript of a record's evidence (HTTP exchanges, TLS facts), bounded."""
    lines: list[str] = []
    for item in evidence:
        if lines:
            lines.append("")
        if "request" in item:
            request, response = item.get("request") or {}, item.get("response") or {}
            lines.append(f"> {request.get('method', '')} {request.get('url', '')}")
            lines += [f"> {k}: {v}" for k, v in (request.get("headers") or {}).items()]
            for status, location in response.get("redirects") or []:
                lines.append(f"  (redirect {status} -> {location})")
            if response.get("status") is None:
                lines.append(f"< no response: {response.get('error', '')}")
            else:
                lines.append(f"< {response.get('status')} {response.get('reason', '')}".rstrip())
            lines += [f"< {k}: {v}" for k, v in response.get("headers") or []]
            body = str(response.get("body_excerpt") or "")
            if body:
                lines.append("<")
                lines += [f"< {line}" for line in body.splitlines()]
            if response.get("note"):
                lines.append(f"  note: {response['note']}")
        elif "tls" in item:
            facts = dict(item.get("tls") or {})
            certificate = facts.pop("certificate", None) or {}
            lines += [f"tls {k}: {v}" for k, v in facts.items() if v not in (None, "", [])]
            lines += [f"certificate {k}: {v}" for k, v in certificate.items() if v not in (None, "", [])]
        elif item.get("kind") == "latency":
            lines += latency_lines(item)
        else:
            lines.append(json.dumps(item, default=str, ensure_ascii=False))
    if len(lines) > limit:
        lines = [*lines[:limit], f"… {len(lines) - limit} more lines in the JSON report"]
    return [strip_control(line) for line in lines]


def _ms(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else str(value)


def latency_lines(item: Mapping[str, Any]) -> list[str]:
    """A latency distribution (perf's evidence): its percentiles and a text histogram, not
    its thousands of raw samples (the JSON report keeps those)."""
    lines = [f"latency of {item.get('endpoint', '')}: p50 {_ms(item.get('p50_ms'))} ms, "
             f"p95 {_ms(item.get('p95_ms'))} ms, p99 {_ms(item.get('p99_ms'))} ms, "
             f"max {_ms(item.get('max_ms'))} ms; {item.get('errors', 0)} errors in "
             f"{item.get('requests', 0)} requests, concurrency {item.get('concurrency', '')}"]
    bins = [b for b in item.get("histogram") or [] if isinstance(b, Mapping)]
    top = max((int(b.get("count") or 0) for b in bins), default=0) or 1
    for b in bins:
        count = int(b.get("count") or 0)
        lines.append(f"  {_ms(b.get('from_ms')):>8} - {_ms(b.get('to_ms')):>8} ms | "
                     f"{'#' * round(30 * count / top):<30} {count}")
    return lines


def _md_head(card: Scorecard) -> list[str]:
    icon = "✅" if card.verdict == "READY" else "❌"
    cap = card.grade_cap
    grade = f"grade **{card.grade}**" + (
        f" (score alone {card.raw_grade}; {md_escape(cap['reason'])})" if cap else "")
    out = [f"# Production readiness: {icon} {card.verdict}", "",
           f"**{card.verdict}** · score **{_score(card.score)}/100** · {grade} · "
           f"fail-on: `{card.fail_on}`", "",
           f"Target: {md_literal(card.target)}"
           + (f" · profile: {md_literal(card.profile)}" if card.profile else "")]
    groups = card.blocker_groups
    if groups:
        out += ["", f"## Blockers ({_count(groups)})", "",
                "| severity | check | on | finding | fix |", "|---|---|---|---|---|"]
        for g in groups:
            link = card.docs_link(str(g["id"]))
            check = (f"[{md_literal(g['id'])}]({link})" if link else md_literal(g["id"])) + (
                " (cannot judge)" if g["outcome"] == "error" else "")
            out.append(f"| **{g['severity']}** | {check} | {_md_subjects(g['subjects'])} | "
                       f"{md_text(g['message'], MD_MESSAGE_CHARS)} | {md_text(g['remediation'])} |")
    out += ["", "## Categories", "",
            "| category | passed | failed | errors | skipped | waived | score |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for row in card.categories():
        out.append(f"| {md_text(row['name'])} | {row['passed']} | {row['failed']} | {row['error']} | "
                   f"{row['skipped']} | {row['waived']} | {_score(row['score'])} |")
    below = card.below_gate_groups
    if below:
        out += ["", f"## Below the fail-on gate ({_count(below)}, not failing the run)", "",
                "| severity | check | on | finding |", "|---|---|---|---|"]
        out += [f"| {g['severity']} | {md_literal(_label(g))} | {_md_subjects(g['subjects'])} | "
                f"{md_text(g['message'], MD_MESSAGE_CHARS)} |" for g in below]
    if card.waived:
        out += ["", f"## Waived ({len(card.waived)})", "", "| check | reason | until |", "|---|---|---|"]
        for r in card.waived:
            waiver = r.get("waiver") or {}
            out.append(f"| {md_literal(r['nodeid'])} | {md_text(waiver.get('reason') or r['message'])} | "
                       f"{md_text(waiver.get('expires') or 'no expiry')} |")
    return out


def _md_evidence(card: Scorecard) -> list[str]:
    """Per blocker group, the evidence of its first finding, collapsed."""
    out: list[str] = []
    by_nodeid = {r["nodeid"]: r for r in card.records}
    for g in card.blocker_groups:
        first = by_nodeid.get(g["nodeids"][0]) or {}
        lines = evidence_lines(first.get("evidence") or [])
        if not lines:
            continue
        # Inside <summary> we are in raw HTML, where Markdown escaping means nothing.
        summary = html.escape(f"{plain(g['id'])} — {plain(first.get('nodeid', ''))}", quote=True)
        out += ["", f"<details><summary>{summary}</summary>", "", *md_fence(lines), "", "</details>"]
    return ["", "## Evidence", *out] if out else []


def _md_checks(card: Scorecard) -> tuple[list[str], list[str]]:
    head = ["", "## All checks", "", "| outcome | severity | check | message |", "|---|---|---|---|"]
    rows = [f"| {r['outcome']} | {r['severity']} | {md_literal(r['nodeid'])} | "
            f"{md_text(r['message'], 200)} |" for r in card.sorted_records()]
    return head, rows


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def markdown(card: Scorecard, *, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """The Markdown report, at most `limit` bytes (GitHub's job-summary cap): when it would
    be larger, the evidence goes first, then rows of the all-checks table, with a note."""
    head = _md_head(card)
    evidence = _md_evidence(card)
    checks_head, rows = _md_checks(card)
    note = ["", "_Shortened to fit the size limit of a job summary: the JSON report has "
                "every check and its evidence._"]
    full = [*head, *evidence, *checks_head, *rows]
    if _size(full) <= limit:
        return "\n".join(full) + "\n"
    budget = limit - _size(head) - _size(checks_head) - _size(note)
    kept: list[str] = []
    for row in rows:
        budget -= _size([row])
        if budget < 0:
            break
        kept.append(row)
    out = [*head, *([*checks_head, *kept] if kept else []), *note]
    text = "\n".join(out) + "\n"
    if len(text.encode("utf-8")) > limit:  # a pathological head (thousands of custom blockers)
        text = text.encode("utf-8")[:max(limit - _size(note) - 1, 0)].decode("utf-8", "ignore")
        text = text[:text.rfind("\n") + 1] + "\n".join(note) + "\n"
    return text


def write_step_summary(card: Scorecard, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append the Markdown report to $GITHUB_STEP_SUMMARY when set, within the 1 MiB a step
    may write there (what the step already wrote counts). Returns the file written."""
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    used = path.stat().st_size if path.exists() else 0
    room = STEP_SUMMARY_LIMIT - used
    if room <= 1024:
        return None
    with path.open("a", encoding="utf-8") as summary:
        summary.write(markdown(card, limit=room))
    return path


# -- HTML -------------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(strip_control(str(value)), quote=True)


def html_page(card: Scorecard) -> str:
    """The HTML scorecard (report/html.py): one self-contained page."""
    from pytest_prodready.report import html as html_report

    return html_report.page(card)


def write(card: Scorecard, path: Path) -> None:
    from pytest_prodready.report.codequality import codequality_text, is_codequality

    suffix = path.suffix.lower()
    if is_codequality(path):  # GitLab Code Quality: a .json file named for it
        text = codequality_text(card)
    elif suffix == ".json":
        text = json.dumps(card.to_json(), indent=2, default=str)
    elif suffix == ".md":
        text = markdown(card)
    elif suffix == ".html":
        text = html_page(card)
    elif suffix == ".sarif":
        from pytest_prodready.report.sarif import sarif_text

        text = sarif_text(card)
    else:
        raise ValueError(f"unknown report format {suffix!r}; use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: an interrupted run never leaves half a report behind.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
