"""SARIF 2.1.0 for code-scanning views (`--prodready-report out.sarif`).

- one rule per check id of the run, its fix as the rule's help, its severity as the level
  and as GitHub's `security-severity`, and its catalogue entry on the team's docs site as
  its `helpUri` when `docs_url` is set;
- one result per finding (failed, or could not judge), and the waived ones as suppressed
  results with the waiver's reason; passes and skips are not results;
- code scanning refuses URL locations, so every result is anchored to the prodready config
  file (the line of the check's table or key when there is one), and names the target URL,
  the subject and the evidence in its message;
- within the limits GitHub applies to an upload: at most 25,000 results and rules a run,
  20 tags a rule, and a file well under 10 MB: when the evidence would make it larger,
  each result's evidence is trimmed first (and the run's properties say so), then results
  past the cap are dropped, worst kept, and counted.

Every string passes through `strip_control` (no escape sequence, control or bidi character).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_prodready.report.anchors import ConfigAnchor, finding_url
from pytest_prodready.report.scorecard import Scorecard, clean
from pytest_prodready.severity import SEVERITY_ORDER

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
MAX_RESULTS = 25_000
MAX_RULES = 25_000
MAX_TAGS = 20
# GitHub takes SARIF files up to 10 MB (gzip-compressed) per upload; we stay under that
# uncompressed, whatever the evidence compresses to.
SIZE_LIMIT = 8 * 1024 * 1024
EVIDENCE_CHARS = 6_000  # a result's evidence, at most
MIN_EVIDENCE_CHARS = 200  # what trimming keeps before it gives up evidence for a result
MESSAGE_CHARS = 1_000

LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub's code scanning ranks security alerts by this (CVSS-like, 0.1-10.0).
SECURITY_SEVERITY = {"critical": "9.5", "high": "7.5", "medium": "5.0", "low": "2.0"}


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("pytest-prodready")
    except Exception:  # a source checkout without metadata
        return "0"


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def _evidence_text(record: Mapping[str, Any], limit: int, cache: dict[str, str]) -> str:
    from pytest_prodready.report.render import evidence_lines

    if limit <= 0:
        return ""
    key = str(record["nodeid"])
    if key not in cache:  # rendered once, however often the size budget is tried
        cache[key] = "\n".join(evidence_lines(record.get("evidence") or []))
    text = cache[key]
    if len(text) > limit:
        cut = text[:limit]
        newline = cut.rfind("\n")
        text = (cut[:newline] if newline > limit // 2 else cut) + \
            "\n… evidence trimmed: the JSON report has all of it"
    return text


def _result(record: Mapping[str, Any], card: Scorecard, rule_index: dict[str, int], uri: str,
            line: int, evidence_chars: int, cache: dict[str, str]) -> dict[str, Any]:
    from pytest_prodready.report.render import plain

    subject = plain(record.get("subject") or "")
    where = finding_url(plain(card.target), subject)
    prefix = "cannot judge: " if record["outcome"] == "error" else ""
    text = f"{prefix}{_bounded(plain(record['message']), MESSAGE_CHARS)} (target: {where})"
    evidence = _evidence_text(record, evidence_chars, cache)
    if evidence:
        text += "\n\nEvidence:\n" + evidence
    if record.get("remediation"):
        text += "\n\nFix: " + _bounded(plain(record["remediation"]), MESSAGE_CHARS)
    result: dict[str, Any] = {
        "ruleId": record["id"],
        "ruleIndex": rule_index[record["id"]],
        "kind": "fail",
        "level": LEVEL.get(record["severity"], "error"),
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                 "region": {"startLine": line}},
            "message": {"text": f"prodready config for {plain(record['id'])}"},
        }],
        # One finding per node id (check and subject): stable across runs, distinct per path.
        "partialFingerprints": {
            "prodready/v1": hashlib.sha256(str(record["nodeid"]).encode("utf-8")).hexdigest()},
        "properties": {"nodeid": record["nodeid"], "outcome": record["outcome"],
                       "severity": record["severity"], "category": record["category"],
                       "target": card.target, "subject": subject},
    }
    if record["outcome"] == "waived":
        waiver = record.get("waiver") or {}
        result["suppressions"] = [{
            "kind": "external", "status": "accepted",
            "justification": plain(f"{waiver.get('reason') or 'waived'} "
                                   f"(until {waiver.get('expires') or 'no expiry'})")}]
    return result


def _rule(check_id: str, records: list[Mapping[str, Any]], docs: str | None) -> dict[str, Any]:
    from pytest_prodready.registry import all_checks
    from pytest_prodready.report.render import md_escape, plain

    spec = all_checks().get(check_id)
    first = records[0]
    severity = max((str(r["severity"]) for r in records), key=lambda s: SEVERITY_ORDER.get(s, 0))
    title = plain(spec.title) if spec is not None else plain(check_id)
    fix = plain(first.get("remediation") or (spec.remediation if spec is not None else ""))
    tags = list(dict.fromkeys(["production-readiness", "security", plain(first["category"])]))[:MAX_TAGS]
    rule: dict[str, Any] = {
        "id": check_id,
        "shortDescription": {"text": _bounded(title, 1000) or check_id},
        "fullDescription": {"text": _bounded(f"{title} ({severity})", 1000)},
        "defaultConfiguration": {"level": LEVEL.get(severity, "error")},
        "properties": {"tags": tags, "security-severity": SECURITY_SEVERITY.get(severity, "7.5"),
                       "precision": "high", "problem.severity": LEVEL.get(severity, "error")},
    }
    help_text = [f"Fix: {fix}"] if fix else []
    help_md = [f"**Fix:** {md_escape(fix)}"] if fix else []
    if docs:
        rule["helpUri"] = docs
        help_text.append(f"Docs: {docs}")
        help_md.append(f"[{check_id} in the docs]({docs})")
    if help_text:
        rule["help"] = {"text": " ".join(help_text), "markdown": "\n\n".join(help_md)}
    return rule


def _order(record: Mapping[str, Any]) -> tuple[int, int, str]:
    # Worst first: findings before waivers, then severity, then node id.
    return (record["outcome"] == "waived", -SEVERITY_ORDER.get(record["severity"], 0), record["nodeid"])


def sarif(card: Scorecard, *, config_file: Path | None = None, config_prefix: str = "",
          root: Path | None = None, limit: int = SIZE_LIMIT) -> dict[str, Any]:
    """The SARIF 2.1.0 log of the card's findings (see the module docstring)."""
    root = root or Path.cwd()
    anchor = ConfigAnchor.of(card, config_file=config_file, config_prefix=config_prefix, root=root)
    uri = anchor.uri

    findings = sorted((r for r in card.records if r["outcome"] in ("failed", "error", "waived")),
                      key=_order)
    dropped = max(len(findings) - MAX_RESULTS, 0)
    findings = findings[:MAX_RESULTS]
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for record in sorted(card.records, key=lambda r: str(r["id"])):
        by_id.setdefault(str(record["id"]), []).append(record)
    # Rules: every check that has a result first (they must be there), then the others run.
    with_results = list(dict.fromkeys(str(r["id"]) for r in findings))
    rule_ids = (with_results + [i for i in by_id if i not in set(with_results)])[:MAX_RULES]
    made: dict[str, dict[str, Any]] = {}

    def rules_for(ids: list[str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        for check_id in ids:
            if check_id not in made:
                made[check_id] = _rule(check_id, by_id[check_id], card.docs_link(check_id))
        return [made[i] for i in ids], {check_id: n for n, check_id in enumerate(ids)}

    def build(evidence_chars: int) -> dict[str, Any]:
        rules, rule_index = rules_for(rule_ids)
        results = [_result(r, card, rule_index, uri, anchor.line(r), evidence_chars, cache) for r in findings]
        run_properties: dict[str, Any] = {
            "target": card.target, "verdict": card.verdict, "score": card.score, "grade": card.grade,
            "fail_on": card.fail_on, "profile": card.profile}
        if evidence_chars < EVIDENCE_CHARS and any(r.get("evidence") for r in findings):
            run_properties["evidence_trimmed"] = (
                f"evidence cut to {evidence_chars} characters a result to fit the size limit; "
                "the JSON report has all of it")
        if dropped:
            run_properties["results_dropped"] = dropped
        return {
            "$schema": SCHEMA_URI,
            "version": VERSION,
            "runs": [{
                "tool": {"driver": {"name": "pytest-prodready", "version": _tool_version(),
                                    "informationUri": "https://pypi.org/project/pytest-prodready/",
                                    "rules": rules}},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
                "invocations": [{"executionSuccessful": True,
                                 "properties": {"verdict": card.verdict}}],
                "results": results,
                "properties": run_properties,
            }],
        }

    cache: dict[str, str] = {}
    evidence_chars = EVIDENCE_CHARS
    while True:
        log = build(evidence_chars)
        size = len(dumps(log).encode("utf-8"))
        if size <= limit or not findings:
            break
        if evidence_chars:
            # Scale the evidence down to what the budget allows, then to none at all.
            shrink = int(evidence_chars * min(0.9, limit / size))
            evidence_chars = shrink if shrink >= MIN_EVIDENCE_CHARS else 0
        elif len(rule_ids) > len(set(str(r["id"]) for r in findings)):
            # Then the rules of checks without a result (passes, skips) go.
            rule_ids = list(dict.fromkeys(str(r["id"]) for r in findings))
        else:
            # Still too large without evidence: keep the worst results that fit.
            keep = min(int(len(findings) * limit / size * 0.95), len(findings) - 1)
            dropped += len(findings) - keep
            del findings[keep:]
            rule_ids = list(dict.fromkeys(str(r["id"]) for r in findings))
    return dict(clean(log))


def dumps(log: Mapping[str, Any]) -> str:
    """The log as written (compact: the size limit is measured on exactly this text)."""
    return json.dumps(log, ensure_ascii=False, separators=(",", ":"))


def sarif_text(card: Scorecard, **kwargs: Any) -> str:
    return dumps(sarif(card, **kwargs)) + "\n"
