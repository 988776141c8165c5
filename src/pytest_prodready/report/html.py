"""The HTML scorecard: one self-contained page to share.

Verdict, score and grade on top; the blockers first, each with its fix and the evidence of
its first finding; a bar per category; then every check with its evidence (requests,
responses, TLS facts) in a collapsible <details>, and filters by outcome, severity and
category.

Safety: every string a target (or a test) controls goes through `strip_control` and
`html.escape(quote=True)`, in text and in attributes; no target string is ever put in an
href, a style or an event handler. Defence in depth: the page's Content-Security-Policy
allows no fetch of anything (default-src 'none') and only the one inline script below, by
its hash, so even markup that escaped the escaping could run nothing and load nothing.

At the end, a check reference: one entry per check id of the run (what it checks, its
mode, its fix), which every row and blocker links to, and which links in turn to the
check's catalogue entry on the team's docs site when `docs_url` is set.

The page reads without JavaScript: everything is in the document, the evidence opens with
a click on its summary. The script only adds the filters, and opens the evidence a link's
fragment names (`report.html#check-3`); a fragment such as `#outcome=failed&severity=high`
presets the filters.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping
from typing import Any

from pytest_prodready.masking import strip_control
from pytest_prodready.report.scorecard import OUTCOMES, Scorecard
from pytest_prodready.severity import SEVERITY_ORDER

# The whole page's evidence stays readable (a check's transcript of a few dozen exchanges);
# the JSON report has everything.
HTML_EVIDENCE_LINES = 400
MESSAGE_CHARS = 600
CHECK_EVIDENCE_CHARS = 20_000  # one check's transcript, at most
PAGE_EVIDENCE_CHARS = 12_000_000  # all of the page's evidence (a browser still opens it quickly)

SCRIPT = """(function () {
  "use strict";
  var form = document.getElementById("filters");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#checks tbody tr"));
  var shown = document.getElementById("shown");
  function apply() {
    var want = {};
    Array.prototype.forEach.call(form.querySelectorAll("select"), function (s) {
      want[s.name] = s.value;
    });
    var count = 0;
    rows.forEach(function (row) {
      var ok = Object.keys(want).every(function (k) {
        return !want[k] || row.getAttribute("data-" + k) === want[k];
      });
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " checks shown";
  }
  function fromHash() {
    var hash = "";
    try { hash = decodeURIComponent(window.location.hash.slice(1)); } catch (e) { return; }
    if (!hash) { return; }
    if (hash.indexOf("=") >= 0) {
      hash.split("&").forEach(function (pair) {
        var kv = pair.split("=");
        var select = form.querySelector("select[name='" + kv[0].replace(/[^a-z]/g, "") + "']");
        if (select) { select.value = kv[1] || ""; }
      });
      return;
    }
    var el = document.getElementById(hash);
    if (!el) { return; }
    var details = el.tagName === "DETAILS" ? el : el.querySelector("details");
    if (details) { details.open = true; }
    el.scrollIntoView();
  }
  form.hidden = false;
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  window.addEventListener("hashchange", function () { fromHash(); apply(); });
  fromHash();
  apply();
}());"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = (f"default-src 'none'; script-src 'sha256-{SCRIPT_HASH}'; style-src 'unsafe-inline'; "
       "img-src 'none'; base-uri 'none'; form-action 'none'; frame-src 'none'")

STYLE = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--muted:#656d76;--line:#d0d7de}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;
padding:1.5em;color:#1f2328}
header{border-radius:8px;padding:1em 1.5em;margin-bottom:1.5em;color:#fff}
header.ready{background:var(--ok)}header.not-ready{background:var(--bad)}
header h1{margin:0 0 .2em;font-size:2em}header p{margin:.2em 0}
header code{background:rgba(255,255,255,.2);color:#fff}
.big{font-size:1.4em;font-weight:600}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 .25em;
border-radius:4px;overflow-wrap:anywhere}
h2{border-bottom:1px solid var(--line);padding-bottom:.2em;margin-top:1.6em}
ul#blockers{list-style:none;padding:0}
ul#blockers li{border:1px solid var(--line);border-left:6px solid var(--bad);border-radius:6px;
padding:.6em 1em;margin:.6em 0}
ul#blockers li.high{border-left-color:#e16f24}ul#blockers li.medium{border-left-color:var(--warn)}
ul#blockers li.low{border-left-color:var(--muted)}
.sev{display:inline-block;min-width:5.5em;font-weight:700;text-transform:uppercase;font-size:.8em}
.sev.critical{color:var(--bad)}.sev.high{color:#bc4c00}.sev.medium{color:var(--warn)}
.sev.low{color:var(--muted)}
.msg{margin:.3em 0}.fix{margin:.3em 0;color:#0a3069}.fix b{color:#1f2328}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;vertical-align:middle;background:#eaeef2;border-radius:4px;height:.9em;
width:14em;overflow:hidden;margin-right:.5em}
.bar span{display:block;height:100%;background:var(--ok)}
.bar span.mid{background:var(--warn)}.bar span.low{background:var(--bad)}
tr.failed td:first-child,tr.error td:first-child{color:var(--bad);font-weight:600}
tr.passed td:first-child{color:var(--ok)}
tr.skipped td:first-child,tr.waived td:first-child{color:var(--muted)}
details summary{cursor:pointer;color:#0969da}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;border:1px solid var(--line);
border-radius:6px;padding:.6em;max-height:40em;overflow:auto;font-size:12px}
.hist{display:flex;align-items:flex-end;gap:1px;height:3em;width:20em;border-bottom:1px solid var(--line)}
.hist span{flex:1;background:#0969da;min-width:2px}
.hist-axis{display:flex;justify-content:space-between;width:20em;font-size:.75em;color:var(--muted)}
form#filters{margin:.5em 0 1em}form#filters label{margin-right:1em}
#shown{color:var(--muted)}
.muted{color:var(--muted)}
dl#reference .doc{border-top:1px solid var(--line);padding:.4em 0}
dl#reference dd{margin:.2em 0 0 1.5em}dl#reference p{margin:.2em 0}
"""


def esc(value: object) -> str:
    """Text as HTML, in content or in a quoted attribute: controls stripped, all escaped."""
    return html.escape(strip_control(str(value)), quote=True)


def _score(value: int | None) -> str:
    return "-" if value is None else str(value)


class Budget:
    """What the page may still spend on evidence text (characters), so that a run with
    thousands of findings still opens in a browser; the JSON report has everything."""

    def __init__(self, total: int = PAGE_EVIDENCE_CHARS) -> None:
        self.left = total
        self.omitted = 0


def _evidence(record: Mapping[str, Any], element_id: str, budget: Budget, *, opened: bool = False) -> str:
    from pytest_prodready.report.render import evidence_lines

    evidence = record.get("evidence") or []
    lines = evidence_lines(evidence, limit=HTML_EVIDENCE_LINES)
    if not lines:
        return '<span class="muted">no evidence</span>'
    count = len(evidence)
    noun = "item" if count == 1 else "items"
    text = "\n".join(lines)
    if budget.left <= 0:
        budget.omitted += 1
        return f'<span class="muted">evidence ({count} {noun}) in the JSON report (page size limit)</span>'
    if len(text) > CHECK_EVIDENCE_CHARS:
        text = text[:CHECK_EVIDENCE_CHARS] + "\n… cut here: the JSON report has all of it"
    budget.left -= len(text)
    return (f'<details id="{esc(element_id)}"{" open" if opened else ""}><summary>evidence '
            f'({count} {noun})</summary><pre>{esc(text)}</pre></details>')


def _bar(score: int | None) -> str:
    if score is None:
        return '<div class="bar"></div>'
    level = "" if score >= 90 else "mid" if score >= 70 else "low"
    cls = f' class="{level}"' if level else ""
    # The width is our own integer, never target text.
    return f'<div class="bar" title="{score}/100"><span{cls} style="width:{int(score)}%"></span></div>'


def _number(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _histogram(item: Mapping[str, Any]) -> str:
    bins = [b for b in item.get("histogram") or [] if isinstance(b, Mapping)]
    counts = [int(b.get("count") or 0) if isinstance(b.get("count"), int) else 0 for b in bins]
    top = max(counts, default=0) or 1
    bars = "".join(
        f'<span title="{_number(b.get("from_ms"))}-{_number(b.get("to_ms"))} ms: {count}" '
        f'style="height:{max(round(100 * count / top), 1 if count else 0)}%"></span>'
        for b, count in zip(bins, counts, strict=True))
    low = _number(bins[0].get("from_ms")) if bins else "-"
    high = _number(bins[-1].get("to_ms")) if bins else "-"
    return (f'<div class="hist">{bars}</div><div class="hist-axis"><span>{low} ms</span>'
            f"<span>{high} ms</span></div>")


def _latency(records: list[dict[str, Any]], row_of: Mapping[str, int]) -> str:
    """Where latency checks ran: each endpoint's percentiles and its histogram."""
    rows = []
    for r in records:
        for item in r.get("evidence") or []:
            if not isinstance(item, Mapping) or item.get("kind") != "latency":
                continue
            rows.append(
                f'<tr><td><a href="#check-{row_of[r["nodeid"]]}">{esc(item.get("endpoint", ""))}</a></td>'
                + "".join(f'<td class="num">{_number(item.get(k))}</td>'
                          for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
                + f'<td class="num">{esc(item.get("errors", 0))}/{esc(item.get("requests", 0))}</td>'
                f"<td>{_histogram(item)}</td></tr>")
    if not rows:
        return ""
    return ('<section id="latency-section"><h2>Latency</h2><table id="latency"><thead><tr><th>endpoint</th>'
            '<th class="num">p50 ms</th><th class="num">p95 ms</th><th class="num">p99 ms</th>'
            '<th class="num">max ms</th><th class="num">errors</th><th>distribution</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _passes_when(specs: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """A built-in check's catalogue line (what it takes to pass) under its node id, and the
    link to its entry in the page's check reference."""
    spec = specs.get(str(record["id"]))
    passes = f"passes when {esc(spec.title)} · " if spec is not None else ""
    return f'<p class="muted">{passes}{_doc_anchor(str(record["id"]), "about this check")}</p>'


def _doc_anchor(check_id: str, text: str) -> str:
    return f'<a class="doc-ref" href="#doc-{esc(check_id)}">{esc(text)}</a>'


def _reference(card: Scorecard, specs: Mapping[str, Any]) -> str:
    """One entry per check id of the run: what it checks, how, and its fix; and the link to
    its catalogue entry on the team's docs site when `docs_url` is set (the page is the
    docs entry otherwise: it carries everything the catalogue says)."""
    first_of: dict[str, Mapping[str, Any]] = {}
    for r in card.sorted_records():
        first_of.setdefault(str(r["id"]), r)
    entries = []
    for check_id, record in sorted(first_of.items()):
        spec = specs.get(check_id)
        if spec is not None:
            needs = ", ".join(f"<code>{esc(n)}</code>" for n in spec.needs) or "nothing"
            facts = (f"<p>passes when {esc(spec.title)}</p><p class=\"muted\">default severity "
                     f"{esc(spec.severity)} · {esc(spec.mode)} · needs {needs}</p>")
            fix = spec.remediation
        else:
            facts = '<p class="muted">not in the catalogue (a check this suite defines)</p>'
            fix = str(record.get("remediation") or "")
        fix_html = f'<p class="fix"><b>fix:</b> {esc(fix)}</p>' if fix else ""
        link = card.docs_link(check_id)
        link_html = (f'<p><a class="docs-link" href="{esc(link)}" rel="noopener noreferrer">'
                     f"{esc(check_id)} in the docs</a></p>" if link else "")
        entries.append(f'<div class="doc" id="doc-{esc(check_id)}"><dt><code>{esc(check_id)}</code>'
                       f'</dt><dd>{facts}{fix_html}{link_html}</dd></div>')
    return ('<section id="reference-section"><h2>Check reference</h2>'
            f'<dl id="reference">{"".join(entries)}</dl></section>')


def _select(name: str, values: list[str]) -> str:
    options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    return (f'<label>{name} <select name="{name}"><option value="">all</option>{options}'
            "</select></label>")


def page(card: Scorecard, *, evidence_chars: int = PAGE_EVIDENCE_CHARS) -> str:
    from pytest_prodready.report.render import cut

    records = card.sorted_records()
    row_of = {r["nodeid"]: i for i, r in enumerate(records)}
    groups = card.blocker_groups
    ready = card.verdict == "READY"
    budget = Budget(evidence_chars)  # the blockers' evidence first, then every check's in order

    # -- head: verdict, score, grade ------------------------------------------------------
    cap = card.grade_cap
    cap_html = (f' <span id="grade-cap">score alone {esc(card.raw_grade)}; {esc(cap["reason"])}</span>'
                if cap else "")
    counts = {o: sum(1 for r in records if r["outcome"] == o) for o in OUTCOMES}
    counts_text = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    profile = f' · profile <code>{esc(card.profile)}</code>' if card.profile else ""
    head = (f'<header id="summary" class="{"ready" if ready else "not-ready"}">'
            f'<h1 id="verdict">{esc(card.verdict)}</h1>'
            f'<p class="big">score <b id="score">{_score(card.score)}</b>/100 · grade '
            f'<span id="grade">{esc(card.grade)}</span>{cap_html}</p>'
            f'<p>target <code id="target">{esc(card.target)}</code>{profile} · fail-on '
            f'<b id="fail-on">{esc(card.fail_on)}</b></p>'
            f'<p id="counts">{len(records)} checks: {esc(counts_text or "none")}</p></header>')

    # -- blockers -------------------------------------------------------------------------
    from pytest_prodready.report.render import _count, _label

    items = []
    for n, g in enumerate(groups):
        first_nodeid = g["nodeids"][0]
        first = records[row_of[first_nodeid]] if first_nodeid in row_of else {}
        subjects = ""
        if g["subjects"]:
            shown = ", ".join(f"<code>{esc(s)}</code>" for s in g["subjects"][:20])
            more = len(g["subjects"]) - 20
            subjects = f" on {shown}" + (f", and {more} more" if more > 0 else "")
        fix = f'<p class="fix"><b>fix:</b> {esc(g["remediation"])}</p>' if g["remediation"] else ""
        rows = ", ".join(f'<a href="#check-{row_of[nid]}">{esc(nid)}</a>'
                         for nid in g["nodeids"][:20] if nid in row_of)
        items.append(
            f'<li class="{esc(g["severity"])}" data-check="{esc(g["id"])}">'
            f'<span class="sev {esc(g["severity"])}">{esc(g["severity"])}</span> '
            f'<a class="doc-ref" href="#doc-{esc(g["id"])}"><code>{esc(_label(g))}</code></a>{subjects}'
            f'<p class="msg">{esc(cut(g["message"], MESSAGE_CHARS))}</p>{fix}'
            f'{_evidence(first, f"blocker-evidence-{n}", budget)}'
            f'<p class="muted">findings: {rows}</p></li>')
    if groups:
        blockers = (f'<section id="blockers-section"><h2>Blockers ({esc(_count(groups))})</h2>'
                    f'<ul id="blockers">{"".join(items)}</ul></section>')
    else:
        blockers = ('<section id="blockers-section"><h2>Blockers</h2>'
                    '<p id="no-blockers">None: nothing at or above the fail-on gate failed.</p></section>')

    # -- categories -----------------------------------------------------------------------
    cat_rows = "".join(
        f'<tr data-category="{esc(c["name"])}"><th scope="row">{esc(c["name"])}</th>'
        f'<td class="score">{_bar(c["score"])} <b>{_score(c["score"])}</b></td>'
        + "".join(f'<td class="num">{c[o]}</td>' for o in OUTCOMES) + "</tr>"
        for c in card.categories())
    categories = ('<section><h2>Categories</h2><table id="categories"><thead><tr><th>category</th>'
                  '<th>score</th>' + "".join(f'<th class="num">{o}</th>' for o in OUTCOMES)
                  + f"</tr></thead><tbody>{cat_rows}</tbody></table></section>")

    # -- every check ----------------------------------------------------------------------
    from pytest_prodready.registry import all_checks

    specs = all_checks()
    check_rows = []
    for i, r in enumerate(records):
        outcome = r["outcome"] if r["outcome"] in OUTCOMES else "error"
        severity = r["severity"] if r["severity"] in SEVERITY_ORDER else "high"
        fix = r.get("remediation") or ""
        fix_html = (f'<p class="fix"><b>fix:</b> {esc(fix)}</p>'
                    if fix and outcome in ("failed", "error") else "")
        waiver = r.get("waiver") or {}
        waived = (f'<p class="muted">waived until {esc(waiver.get("expires") or "no expiry")}: '
                  f'{esc(waiver.get("reason") or "")}</p>' if outcome == "waived" else "")
        check_rows.append(
            f'<tr id="check-{i}" class="{outcome}" data-outcome="{outcome}" '
            f'data-severity="{severity}" data-category="{esc(r["category"])}">'
            f"<td>{outcome}</td><td>{severity}</td>"
            f"<td><code>{esc(r['nodeid'])}</code>{_passes_when(specs, r)}</td>"
            f'<td><p class="msg">{esc(cut(r["message"], MESSAGE_CHARS))}</p>{fix_html}{waived}</td>'
            f'<td>{_evidence(r, f"evidence-{i}", budget)}</td></tr>')
    severities = sorted({r["severity"] for r in records if r["severity"] in SEVERITY_ORDER},
                        key=lambda s: -SEVERITY_ORDER[s])
    outcomes = [o for o in OUTCOMES if counts[o]]
    filters = ('<form id="filters" hidden>' + _select("outcome", outcomes) + _select("severity", severities)
               + _select("category", sorted({str(r["category"]) for r in records}))
               + '<button type="reset">show all</button> <span id="shown"></span></form>')
    checks = ('<section><h2>Checks</h2>' + filters + '<table id="checks"><thead><tr><th>outcome</th>'
              '<th>severity</th><th>check</th><th>finding</th><th>evidence</th></tr></thead>'
              f'<tbody>{"".join(check_rows)}</tbody></table></section>')

    title = f"prodready: {card.verdict} · {_score(card.score)}/100 · {card.grade}"
    return ("<!doctype html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>{head}\n{blockers}\n{categories}\n{_latency(records, row_of)}\n{checks}\n"
            f"{_reference(card, specs)}\n"
            f"<script>{SCRIPT}</script></body></html>\n")
