"""GitLab Code Quality: the fields GitLab requires on every issue, one issue per finding
anchored to the config file, fingerprints stable across runs and distinct per subject and
host, waivers left out, and within its size limit for a run with 2,000 findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from pytest_prodready.report import codequality as cq
from pytest_prodready.report.render import write
from tests.report.records import card_of, exchange, rec
from tests.report.test_html_browser import hostile_url, run_suite  # noqa: F401 (fixture)
from tests.report.test_sarif import sample

# What GitLab's documentation requires of each issue of a Code Quality report
# (https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format): a string
# description, check_name and fingerprint, one of its five severities, and a location with
# a repository-relative path and a line (lines.begin).
ISSUE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "pattern": "^[^/]"},
                    "lines": {"type": "object", "required": ["begin"],
                              "properties": {"begin": {"type": "integer", "minimum": 1}}},
                },
            },
        },
    },
}


def validate(issues: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(ISSUE_SCHEMA)
    jsonschema.Draft202012Validator(ISSUE_SCHEMA).validate(issues)
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(fingerprints) == len(set(fingerprints)), "GitLab shows only one issue per fingerprint"


def test_one_issue_per_finding_anchored_to_the_config_with_the_target_and_fix(tmp_path: Path) -> None:
    card, config = sample(tmp_path)
    path = tmp_path / "gl-code-quality-report.json"
    write(card, path)
    issues = json.loads(path.read_text(encoding="utf-8"))
    validate(issues)
    # Two failures and one "cannot judge"; the waiver, the pass and the skip are not issues.
    by_check = {i["check_name"]: i for i in issues}
    assert sorted(by_check) == ["auth.required", "cors.unknown_origin_rejected", "headers.hsts"]
    cors = by_check["cors.unknown_origin_rejected"]
    assert cors["severity"] == "blocker"
    assert cors["description"] == (
        "[cors.unknown_origin_rejected] the Origin https://evil.example was echoed "
        "(target: https://staging.example.com/api/agents). Fix: Only allow listed origins.")
    lines = config.read_text(encoding="utf-8").splitlines()
    assert {i["location"]["path"] for i in issues} == {"prodready.toml"}
    assert lines[cors["location"]["lines"]["begin"] - 1] == "[cors]"
    assert lines[by_check["auth.required"]["location"]["lines"]["begin"] - 1] == 'protected = ["/api/agents"]'
    hsts = by_check["headers.hsts"]
    assert hsts["severity"] == "critical"  # high
    assert "cannot judge: connection refused" in hsts["description"]
    assert "\x1b" not in path.read_text(encoding="utf-8")
    # Worst first: the widget lists them in the report's order.
    assert [i["severity"] for i in issues] == ["blocker", "blocker", "critical"]


def test_fingerprints_are_stable_and_distinct_per_subject_and_host(tmp_path: Path) -> None:
    one = cq.fingerprint("auth.required", "/api/agents", "https://staging.example.com")
    assert one == cq.fingerprint("auth.required", "/api/agents", "https://STAGING.example.com/")
    staging = "https://staging.example.com"
    assert len({one, cq.fingerprint("auth.required", "/api/users", staging),
                cq.fingerprint("auth.required", "/api/agents", "https://prod.example.com"),
                cq.fingerprint("auth.invalid_token_rejected", "/api/agents", staging)}) == 4
    card, _ = sample(tmp_path)
    # The same findings from a later run (other messages, other evidence) keep their fingerprints.
    again, _ = sample(tmp_path)
    for record in again.records:
        record["message"] = "another wording"
        record["evidence"] = [exchange(body="different")]
    assert ([i["fingerprint"] for i in cq.codequality(card, root=tmp_path)]
            == [i["fingerprint"] for i in cq.codequality(again, root=tmp_path)])


def test_2000_findings_stay_within_the_limit_and_the_cut_is_said(tmp_path: Path) -> None:
    card, _ = sample(tmp_path)
    big = "x" * 60_000
    card.records = [rec(f"cors.check_{i % 40}", "critical" if i % 10 == 0 else "low", "failed", f"/api/{i}",
                        message="m" * 5_000, evidence=[exchange(body=big)]) for i in range(2_000)]
    path = tmp_path / "prodready.codequality.json"
    write(card, path)
    issues = json.loads(path.read_text(encoding="utf-8"))
    validate(issues)
    assert len(issues) == 2_000  # descriptions bounded, evidence never included: all fit
    assert path.stat().st_size <= cq.SIZE_LIMIT
    assert all(len(i["description"]) <= cq.DESCRIPTION_CHARS + 60 for i in issues)
    # Under a smaller limit the least severe go, and one info issue counts them.
    small = cq.codequality(card, root=tmp_path, limit=256 * 1024)
    validate(small)
    assert len(cq.dumps(small).encode("utf-8")) <= 256 * 1024
    note = small[-1]
    assert note["check_name"] == cq.TRUNCATED_CHECK and note["severity"] == "info"
    assert note["description"].startswith(f"{2_000 - (len(small) - 1)} less severe prodready findings")
    assert [i["severity"] for i in small[:200]] == ["blocker"] * 200


def test_a_card_without_findings_is_an_empty_report(tmp_path: Path) -> None:
    card = card_of([rec("headers.csp", "medium", "passed", "/")])
    assert cq.codequality(card, root=tmp_path) == []


def test_only_json_files_named_for_code_quality_are_code_quality(tmp_path: Path) -> None:
    assert cq.is_codequality(Path("gl-code-quality-report.json"))
    assert cq.is_codequality(Path("out/prodready.codequality.json"))
    assert not cq.is_codequality(Path("prodready.json"))
    assert not cq.is_codequality(Path("codequality.md"))


def test_the_report_option_writes_code_quality_from_a_real_run(hostile_url: str, tmp_path: Path) -> None:  # noqa: F811
    run = run_suite(hostile_url, tmp_path, "gl-code-quality-report.json", "out.json")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    issues = json.loads((tmp_path / "gl-code-quality-report.json").read_text(encoding="utf-8"))
    validate(issues)
    scorecard = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    findings = [c for c in scorecard["checks"] if c["outcome"] in ("failed", "error")]
    assert findings and len(issues) == len(findings)
    assert {i["check_name"] for i in issues} == {c["id"] for c in findings}
    assert all(hostile_url in i["description"] for i in issues)
    assert not any(ch in json.dumps(issues, ensure_ascii=False) for ch in "\x1b\x07\u202e")
