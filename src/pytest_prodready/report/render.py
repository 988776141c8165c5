"""Scorecard renderers: terminal text, Markdown (CI job summaries), JSON and HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path

from pytest_prodready.report.scorecard import Scorecard

FORMATS = (".json", ".md", ".html")


def _score(value: int | None) -> str:
    return "-" if value is None else str(value)


def _headline(card: Scorecard) -> str:
    return (f"verdict: {card.verdict}   score: {_score(card.score)}/100 ({card.grade})   "
            f"fail-on: {card.fail_on}")


def terminal(card: Scorecard) -> list[str]:
    lines = [f"target: {card.target}" + (f"   profile: {card.profile}" if card.profile else ""),
             _headline(card), ""]
    lines.append(f"{'category':<12} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7} "
                 f"{'waived':>6} {'score':>5}")
    for row in card.categories():
        lines.append(f"{row['name']:<12} {row['passed']:>6} {row['failed']:>6} {row['error']:>6} "
                     f"{row['skipped']:>7} {row['waived']:>6} {_score(row['score']):>5}")
    if card.blockers:
        lines += ["", f"blockers ({len(card.blockers)}):"]
        for r in card.blockers:
            lines.append(f"  {r['severity'].upper():<8} {r['nodeid']}")
            lines.append(f"           {r['message'][:300]}")
            if r.get("remediation"):
                lines.append(f"           fix: {r['remediation']}")
    if card.below_gate:
        lines += ["", f"below the fail-on gate ({len(card.below_gate)}, not failing the run):"]
        lines += [f"  {r['severity'].upper():<8} {r['nodeid']}: {r['message'][:200]}"
                  for r in card.below_gate]
    waived = [r for r in card.sorted_records() if r["outcome"] == "waived"]
    if waived:
        lines += ["", f"waived ({len(waived)}):"]
        for r in waived:
            waiver = r.get("waiver") or {}
            lines.append(f"  {r['nodeid']}: {waiver.get('reason') or r['message']} "
                         f"(until {waiver.get('expires') or 'no expiry'})")
    return lines


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(card: Scorecard) -> str:
    icon = "✅" if card.verdict == "READY" else "❌"
    out = [f"# Production readiness: {icon} {card.verdict}", "",
           f"Target: `{card.target}` · score **{_score(card.score)}/100 ({card.grade})** · "
           f"fail-on: `{card.fail_on}`", "",
           "| category | passed | failed | errors | skipped | waived | score |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for row in card.categories():
        out.append(f"| {row['name']} | {row['passed']} | {row['failed']} | {row['error']} | "
                   f"{row['skipped']} | {row['waived']} | {_score(row['score'])} |")
    if card.blockers:
        out += ["", "## Blockers", "", "| severity | check | finding | fix |", "|---|---|---|---|"]
        for r in card.blockers:
            out.append(f"| {r['severity']} | `{_md_cell(r['nodeid'])}` | {_md_cell(r['message'][:300])} | "
                       f"{_md_cell(r.get('remediation', ''))} |")
    out += ["", "## All checks", "", "| outcome | severity | check | message |", "|---|---|---|---|"]
    for r in card.sorted_records():
        out.append(f"| {r['outcome']} | {r['severity']} | `{_md_cell(r['nodeid'])}` | "
                   f"{_md_cell(r['message'][:200])} |")
    return "\n".join(out) + "\n"


def html_page(card: Scorecard) -> str:
    e = html.escape
    rows = "\n".join(
        f"<tr class='{e(r['outcome'])}'><td>{e(r['outcome'])}</td><td>{e(r['severity'])}</td>"
        f"<td><code>{e(r['nodeid'])}</code></td><td>{e(r['message'][:300])}</td>"
        f"<td>{e(r.get('remediation', ''))}</td></tr>"
        for r in card.sorted_records())
    cats = "\n".join(
        f"<tr><td>{e(c['name'])}</td><td>{c['passed']}</td><td>{c['failed']}</td><td>{c['error']}</td>"
        f"<td>{c['skipped']}</td><td>{c['waived']}</td><td>{_score(c['score'])}</td></tr>"
        for c in card.categories())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prodready: {e(card.verdict)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.failed,.error{{background:#fde2e2}}
.passed{{background:#e3f6e3}}.waived,.skipped{{background:#f3f3f3}}</style></head>
<body><h1 id="verdict">{e(card.verdict)}</h1>
<p>Target <code>{e(card.target)}</code> · score <b id="score">{_score(card.score)}</b>/100
(<span id="grade">{e(card.grade)}</span>) · fail-on {e(card.fail_on)}</p>
<table id="categories"><tr><th>category</th><th>passed</th><th>failed</th><th>errors</th>
<th>skipped</th><th>waived</th><th>score</th></tr>{cats}</table>
<h2>Checks</h2><table id="checks"><tr><th>outcome</th><th>severity</th><th>check</th>
<th>message</th><th>fix</th></tr>{rows}</table></body></html>
"""


def write(card: Scorecard, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(card.to_json(), indent=2, default=str)
    elif suffix == ".md":
        text = markdown(card)
    elif suffix == ".html":
        text = html_page(card)
    else:
        raise ValueError(f"unknown report format {suffix!r}; use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
