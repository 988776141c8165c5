"""GitLab Code Quality report (`--prodready-report gl-code-quality-report.json`).

GitLab shows a Code Quality artifact (`artifacts: reports: codequality:`) in the merge
request widget, new findings against the target branch's, and in the pipeline's Code
Quality tab. It reads a JSON array of issues in a subset of the Code Climate format, each
with `description`, `check_name`, `fingerprint`, `severity` (info, minor, major, critical,
blocker) and `location.path` + `location.lines.begin`: a file of the repository.

- one issue per finding: a failed check, or one that could not judge ("cannot judge: …");
  waived findings are left out (accepted risks are not work in a merge request), passes and
  skips are not issues;
- anchored to the prodready config file like SARIF (report/anchors.py), with the target
  URL and the subject in the description;
- the fingerprint is what GitLab compares between pipelines: a hash of the check id, the
  subject and the target's host, so it is stable across runs and distinct per path and per
  environment (the staging and the production job's findings do not merge);
- bounded: each description at most DESCRIPTION_CHARS, the whole file at most SIZE_LIMIT,
  over which the least severe issues go and one `info` issue says how many (the JSON
  report has them all). The evidence is never in this file: GitLab shows no field for it.

Every string passes through `strip_control` (no escape sequence, control or bidi character).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_prodready.report.anchors import ConfigAnchor, finding_url
from pytest_prodready.report.scorecard import Scorecard, clean
from pytest_prodready.severity import SEVERITY_ORDER

SEVERITY = {"critical": "blocker", "high": "critical", "medium": "major", "low": "minor"}
DESCRIPTION_CHARS = 1_000
# GitLab limits artifacts per type by an instance setting; a report of a few MiB is far
# inside any default and still loads quickly in the merge request widget.
SIZE_LIMIT = 4 * 1024 * 1024
TRUNCATED_CHECK = "prodready.report_truncated"


def is_codequality(path: Path) -> bool:
    """A `.json` report whose name says Code Quality: gl-code-quality-report.json (GitLab's
    usual name), codequality.json, prodready.codequality.json..."""
    name = path.name.lower()
    return name.endswith(".json") and ("codequality" in name or "code-quality" in name)


def fingerprint(check_id: str, subject: str, target: str) -> str:
    host = (urlsplit(target).netloc or target).lower()
    return hashlib.sha256(f"prodready/v1\0{check_id}\0{subject}\0{host}".encode()).hexdigest()


def _issue(record: Mapping[str, Any], card: Scorecard, anchor: ConfigAnchor) -> dict[str, Any]:
    from pytest_prodready.report.render import cut, plain

    subject = plain(record.get("subject") or "")
    prefix = "cannot judge: " if record["outcome"] == "error" else ""
    where = finding_url(plain(card.target), subject)
    fix = f" Fix: {plain(record['remediation'])}" if record.get("remediation") else ""
    text = f"{prefix}{plain(record['message'])} (target: {where}).{fix}"
    return {
        "type": "issue",
        "check_name": str(record["id"]),
        "description": f"[{record['id']}] " + cut(text, DESCRIPTION_CHARS),
        "categories": ["Security"],
        "severity": SEVERITY.get(str(record["severity"]), "critical"),
        "fingerprint": fingerprint(str(record["id"]), subject, card.target),
        "location": {"path": anchor.uri, "lines": {"begin": anchor.line(record)}},
    }


def _truncated(count: int, anchor: ConfigAnchor) -> dict[str, Any]:
    return {
        "type": "issue",
        "check_name": TRUNCATED_CHECK,
        "description": f"{count} less severe prodready findings left out to keep this report "
                       "under its size limit; the JSON report has every finding.",
        "categories": ["Security"],
        "severity": "info",
        "fingerprint": hashlib.sha256(b"prodready/v1\0" + TRUNCATED_CHECK.encode()).hexdigest(),
        "location": {"path": anchor.uri, "lines": {"begin": 1}},
    }


def codequality(card: Scorecard, *, config_file: Path | None = None, config_prefix: str = "",
                root: Path | None = None, limit: int = SIZE_LIMIT) -> list[dict[str, Any]]:
    """The card's findings as GitLab Code Quality issues (see the module docstring)."""
    anchor = ConfigAnchor.of(card, config_file=config_file, config_prefix=config_prefix,
                             root=root or Path.cwd())
    findings = sorted((r for r in card.records if r["outcome"] in ("failed", "error")),
                      key=lambda r: (-SEVERITY_ORDER.get(r["severity"], 0), r["nodeid"]))
    issues = [dict(clean(_issue(r, card, anchor))) for r in findings]
    sizes = [len(dumps([i]).encode("utf-8")) for i in issues]
    if sum(sizes) <= limit:
        return issues
    room = limit - len(dumps([_truncated(len(issues), anchor)]).encode("utf-8"))
    kept = 0
    for size in sizes:  # worst first: keep what fits
        room -= size
        if room < 0:
            break
        kept += 1
    return [*issues[:kept], _truncated(len(issues) - kept, anchor)]


def dumps(issues: list[dict[str, Any]]) -> str:
    return json.dumps(issues, ensure_ascii=False, indent=None, separators=(",", ":"))


def codequality_text(card: Scorecard, **kwargs: Any) -> str:
    return dumps(codequality(card, **kwargs)) + "\n"
